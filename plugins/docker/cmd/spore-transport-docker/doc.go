// Command spore-transport-docker serves the docker transport to spore.
package main
