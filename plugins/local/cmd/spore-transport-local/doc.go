// Command spore-transport-local serves the local transport to spore.
package main
