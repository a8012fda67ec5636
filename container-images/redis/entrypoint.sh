#!/bin/sh
# As the official image does: with no configuration file, Redis's protected mode would refuse
# every client from another container, so it is turned off (the port is published on loopback
# only, and the network is the project's own).
set -eu
if [ "${1:-}" = redis-server ]; then
  shift
  exec redis-server --protected-mode no "$@"
fi
exec "$@"
