#!/usr/bin/env bash
# Installs the Debian packages ku9 builds, runs and tests with (Debian 12).
# Idempotent and without prompts: only missing packages are installed.
set -euo pipefail

packages=(
    postgresql-15               # the server
    postgresql-server-dev-15    # PGXS, pg_regress, isolation tester, TAP modules
    postgresql-15-cron          # scheduled sends (ku9.schedule)
    libjwt-dev                  # JWT library, loaded at run time by the auth module
    libssl-dev                  # OpenSSL (HMAC for JWTs)
    libpq-dev                   # libpq: the HTTP gateway's database connections
    libmicrohttpd-dev           # HTTP library of the embedded gateway
    libipc-run-perl             # TAP tests
    prometheus                  # promtool checks the metrics exposition
    curl                        # make run checks the gateway and prints curl examples
    make gcc
)

missing=()
for p in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$p")
    fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
    echo "ku9: these Debian packages are missing: ${missing[*]}" >&2
    echo "ku9: run as root (or install them with apt-get) and try again" >&2
    exit 1
fi

# ku9 makes its own clusters: keep Debian from creating and starting 15/main
mkdir -p /etc/postgresql-common/createcluster.d
echo 'create_main_cluster = false' > /etc/postgresql-common/createcluster.d/ku9.conf

echo "ku9: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
