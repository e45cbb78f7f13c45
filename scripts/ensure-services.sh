#!/usr/bin/env bash
# Make sure the local services the tests use are up: start any that is installed but stopped.
# A service that is not installed is reported; the tests that need it then fail with a hint.
set -u

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() {  # name port seconds
  for _ in $(seq 1 "$3"); do port_open "$2" && return 0; sleep 1; done
  echo "ensure-services: $1 did not come up on port $2" >&2
  return 1
}

ensure() {  # name port check-binary start-command...
  local name=$1 port=$2 bin=$3; shift 3
  if port_open "$port"; then echo "ensure-services: $name is up"; return 0; fi
  if ! command -v "$bin" >/dev/null 2>&1 && [ ! -x "$bin" ]; then
    echo "ensure-services: $name is not installed; tests that need it will fail" >&2
    return 0
  fi
  echo "ensure-services: starting $name"
  "$@" >/dev/null 2>&1 || true
  wait_port "$name" "$port" 60
}

ensure PostgreSQL 5432 pg_ctlcluster \
  sh -c 'pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start'
ensure MariaDB 3306 /usr/sbin/mariadbd \
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
ensure Redis 6379 redis-server \
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
  --dir /var/lib/redis --logfile /var/log/redis/ci.log
ensure RabbitMQ 5672 rabbitmq-server rabbitmq-server -detached
exit 0
