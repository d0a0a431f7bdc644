#!/usr/bin/env bash
# Builds a local PostgreSQL image compatible with the official `postgres` image
# (POSTGRES_USER / POSTGRES_PASSWORD / POSTGRES_DB, port 5432, the same
# readiness lines) from Debian packages, for machines with no image registry.
#
# Usage: ci/build-pg-image.sh [IMAGE]   (default phasegate/postgres:15)
# Skips the build when the image already exists (FORCE=1 rebuilds).
set -euo pipefail

image="${1:-${PHASEGATE_PG_IMAGE:-phasegate/postgres:15}}"
suite="${DEBIAN_SUITE:-bookworm}"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"

if [ -z "${FORCE:-}" ] && docker image inspect "$image" >/dev/null 2>&1; then
  echo "image $image already present"
  exit 0
fi

if ! command -v debootstrap >/dev/null 2>&1; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
rootfs="$work/rootfs"

echo "debootstrap $suite with postgresql-15 into $rootfs"
debootstrap --variant=minbase --include=postgresql-15 "$suite" "$rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 || {
  tail -n 30 "$work/debootstrap.log" >&2
  exit 1
}

# Debian's package creates a cluster under /var/lib/postgresql/15/main; the
# entrypoint makes its own in PGDATA, like the official image.
rm -rf "$rootfs/var/lib/postgresql/15" "$rootfs/etc/postgresql/15"
rm -rf "$rootfs/var/cache/apt/archives/"*.deb "$rootfs/var/lib/apt/lists/"*

install -m 0755 /dev/stdin "$rootfs/usr/local/bin/docker-entrypoint.sh" <<'ENTRY'
#!/bin/sh
# Entry point compatible with the official postgres image's environment.
set -eu
PGBIN=/usr/lib/postgresql/15/bin
export PGDATA="${PGDATA:-/var/lib/postgresql/data}"
POSTGRES_USER="${POSTGRES_USER:-postgres}"
POSTGRES_DB="${POSTGRES_DB:-$POSTGRES_USER}"
POSTGRES_PASSWORD="${POSTGRES_PASSWORD:-}"
INITDB_ARGS="-E UTF8 --locale=C.UTF-8 --auth-local=trust --auth-host=scram-sha-256"
# A cluster made by initdb at build time (superuser postgres), copied into
# an empty PGDATA instead of running initdb at every start.
CACHED=/var/lib/postgresql/initdb-cache

# Arguments: like the official image, "postgres -c x=y ..." or just "-c x=y".
if [ "${1:-}" = "postgres" ]; then shift; fi

mkdir -p "$PGDATA" /var/run/postgresql
chown -R postgres:postgres "$PGDATA" /var/run/postgresql
chmod 700 "$PGDATA"

if [ ! -s "$PGDATA/PG_VERSION" ]; then
  if [ -z "$POSTGRES_PASSWORD" ] && [ "${POSTGRES_HOST_AUTH_METHOD:-}" != "trust" ]; then
    echo "error: POSTGRES_PASSWORD is empty; set it or POSTGRES_HOST_AUTH_METHOD=trust" >&2
    exit 1
  fi
  if [ -s "$CACHED/PG_VERSION" ] && [ "$POSTGRES_USER" = postgres ]; then
    # The cluster initdb made when the image was built (initdb costs about a
    # second, a copy a tenth of that), with this container's password.
    cp -a "$CACHED/." "$PGDATA/"
    printf "ALTER ROLE postgres PASSWORD '%s'\n" "$(printf '%s' "$POSTGRES_PASSWORD" | sed "s/'/''/g")" |
      setpriv --reuid=postgres --regid=postgres --init-groups \
        "$PGBIN/postgres" --single -D "$PGDATA" -j postgres >/dev/null
  else
    pwfile="$(mktemp)"
    printf '%s\n' "$POSTGRES_PASSWORD" > "$pwfile"
    chown postgres "$pwfile"
    setpriv --reuid=postgres --regid=postgres --init-groups \
      "$PGBIN/initdb" -D "$PGDATA" -U "$POSTGRES_USER" --pwfile="$pwfile" $INITDB_ARGS >/dev/null
    rm -f "$pwfile"
  fi
  method="${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}"
  printf 'host all all 0.0.0.0/0 %s\nhost all all ::/0 %s\n' "$method" "$method" >> "$PGDATA/pg_hba.conf"
  if [ "$POSTGRES_DB" != "postgres" ]; then
    echo "CREATE DATABASE \"$POSTGRES_DB\" OWNER \"$POSTGRES_USER\"" |
      setpriv --reuid=postgres --regid=postgres --init-groups \
        "$PGBIN/postgres" --single -D "$PGDATA" -j postgres >/dev/null
  fi
  # The official image prints this from its init-time server on stdout;
  # readiness checks (testcontainers) wait for it there as well as on stderr.
  echo "database system is ready to accept connections (init complete)"
fi

exec setpriv --reuid=postgres --regid=postgres --init-groups \
  "$PGBIN/postgres" -D "$PGDATA" -c listen_addresses='*' "$@"
ENTRY

echo "importing $image"
config=(-c 'ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]' -c 'CMD ["postgres"]' -c 'ENV LANG=C.UTF-8' -c 'EXPOSE 5432')
tar -C "$rootfs" -c . | docker import "${config[@]}" - "$image" >/dev/null

# The cluster every start copies (see CACHED in the entry point), made once
# in a container of the image and committed into it; its password is
# replaced by the container's at each start.
echo "baking an initdb cluster into $image"
baker="$(docker run -d --entrypoint sh "$image" -c '
  head -c 24 /dev/urandom | od -An -tx1 | tr -d " \n" > /tmp/initdb-pw && chown postgres /tmp/initdb-pw &&
  setpriv --reuid=postgres --regid=postgres --init-groups /usr/lib/postgresql/15/bin/initdb -D /var/lib/postgresql/initdb-cache \
    -U postgres --pwfile=/tmp/initdb-pw -E UTF8 --locale=C.UTF-8 --auth-local=trust --auth-host=scram-sha-256 >/dev/null &&
  rm -f /tmp/initdb-pw')"
if [ "$(docker wait "$baker")" != 0 ]; then
  docker logs "$baker" >&2
  docker rm -f "$baker" >/dev/null
  exit 1
fi
docker commit "${config[@]}" "$baker" "$image" >/dev/null
docker rm "$baker" >/dev/null
echo "built $image"
