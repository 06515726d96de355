# Shell functions to make, start and stop a PostgreSQL cluster with ku9
# loaded.  Sourced by tools/test.sh, tools/run.sh and tools/bench.sh.
# initdb refuses to run as root, so the cluster belongs to the postgres
# user when these run as root.

PG_BINDIR=$(pg_config --bindir)

# as_pg CMD...: run a command as the cluster's owner
as_pg() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

# free_port START: print the first TCP port from START on that nobody listens on
free_port() {
    local port=$1
    while (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
        port=$((port + 1))
    done
    echo "$port"
}

# cluster_init DIR PORT CONF: initdb in DIR/data (unless it exists), with
# the socket in DIR, listening on 127.0.0.1:PORT, and the settings of CONF
# (a file) appended
cluster_init() {
    local dir=$1 port=$2 conf=$3
    mkdir -p "$dir"
    [ "$(id -u)" -eq 0 ] && chown postgres "$dir"
    if [ ! -f "$dir/data/PG_VERSION" ]; then
        as_pg "$PG_BINDIR/initdb" -D "$dir/data" -A trust -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 ||
            { cat "$dir/initdb.log" >&2; return 1; }
        {
            echo
            echo "# added by ku9's tools/cluster.sh"
            echo "port = $port"
            echo "listen_addresses = '127.0.0.1'"
            echo "unix_socket_directories = '$dir'"
            cat "$conf"
        } >>"$dir/data/postgresql.conf"
    else
        sed -i "s/^port = .*/port = $port/" "$dir/data/postgresql.conf"
    fi
}

# cluster_start DIR: start in the background, logging to DIR/server.log
cluster_start() {
    local dir=$1
    as_pg "$PG_BINDIR/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null ||
        { tail -n 30 "$dir/server.log" >&2; return 1; }
}

# cluster_stop DIR: fast shutdown, if running
cluster_stop() {
    local dir=$1
    if [ -f "$dir/data/postmaster.pid" ]; then
        as_pg "$PG_BINDIR/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null || true
    fi
}
