// Command spore-transport-sudo is spore's sudo transport plugin. The spore
// host starts it; it is not meant to be run by hand.
package main
