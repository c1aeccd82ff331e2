// Command spore-transport-ssh is spore's ssh transport plugin. The spore
// host starts it; it is not meant to be run by hand.
package main
