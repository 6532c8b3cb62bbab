#!/bin/sh
# /usr/bin/studio: starts the studio installed in /opt/studio (GUI, CLI, --worker, --self-test).
exec /opt/studio/studio "$@"
