#!/usr/bin/env bash
# Start (and if need be install) the PostgreSQL and Redis that opsguard and its tests use.
# Sourced by scripts/run.sh and scripts/test.sh; every step says what it does and fails loudly.

apt_install() {
    if [ "$(id -u)" != 0 ]; then
        echo "error: $* missing and not root; install it (Debian: apt-get install $*)" >&2
        return 1
    fi
    echo "installing $* ..." >&2
    apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >&2
}

ensure_postgres() {
    command -v pg_isready >/dev/null || apt_install postgresql postgresql-client || return 1
    if pg_isready -h 127.0.0.1 -p 5432 -q; then return 0; fi
    echo "PostgreSQL is down: starting it" >&2
    local version
    version=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -1)
    if [ -z "$version" ]; then
        apt_install postgresql || return 1
        version=$(ls /etc/postgresql | sort -V | tail -1)
    fi
    pg_ctlcluster --skip-systemctl-redirect "$version" main start >&2 || true
    for _ in $(seq 1 30); do
        pg_isready -h 127.0.0.1 -p 5432 -q && return 0
        sleep 1
    done
    echo "error: PostgreSQL did not come up on 127.0.0.1:5432" >&2
    return 1
}

ensure_redis() {
    command -v redis-server >/dev/null || apt_install redis-server redis-tools || return 1
    if redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG; then return 0; fi
    echo "Redis is down: starting it" >&2
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no >&2
    for _ in $(seq 1 30); do
        redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG && return 0
        sleep 1
    done
    echo "error: Redis did not come up on 127.0.0.1:6379" >&2
    return 1
}

# Tools the tests drive directly: openssl s_server speaks the TLS 1.0/1.1 rustls cannot.
ensure_test_tools() {
    command -v openssl >/dev/null || apt_install openssl || return 1
    # testssl.sh is the reference the tls check is compared with (tests/api/checks_targets/
    # testssl_agreement.rs, which skips with a reason when it is missing; benches/tls.rs).
    command -v testssl >/dev/null || apt_install testssl.sh ||
        echo "warning: testssl.sh not installed; its agreement test will be skipped" >&2
    # Backups: pg_dump/pg_restore, and the standard age and zstd tools the by-hand restore
    # test (and the README) use.
    command -v pg_dump >/dev/null || apt_install postgresql-client || return 1
    command -v age >/dev/null || apt_install age || return 1
    command -v zstd >/dev/null || apt_install zstd || return 1
    # An S3-compatible server for the object-storage backup tests.
    command -v moto_server >/dev/null || pip_install 'moto[server]' || return 1
    # promtool checks /metrics and unit-tests deploy/prometheus/alerts.yml.
    command -v promtool >/dev/null || apt_install prometheus || return 1
    # The deployment files' validators (tests/deploy.rs): systemd-analyze for the unit,
    # kubernetes-validate (schemas bundled, offline) for the manifests, Compose for
    # docker-compose.yml (the docker compose plugin if present, else Debian's docker-compose).
    command -v systemd-analyze >/dev/null || apt_install systemd || return 1
    command -v kubernetes-validate >/dev/null || pip_install kubernetes-validate || return 1
    command -v kubernetes-validate >/dev/null || {
        echo "error: kubernetes-validate installed but not on PATH ($PATH)" >&2
        return 1
    }
    if ! docker compose version >/dev/null 2>&1; then
        command -v docker-compose >/dev/null || apt_install docker-compose || return 1
    fi
    # fail2ban's sshd filter is the reference the failed-login replay test is measured
    # against (tests/api/logins/replay.rs).
    command -v fail2ban-regex >/dev/null || apt_install fail2ban || return 1
    # The syslog-ng shipper recipe (deploy/shippers/) is tested by running syslog-ng itself.
    ls /usr/lib/syslog-ng/*/libhttp.so >/dev/null 2>&1 || apt_install syslog-ng-core syslog-ng-mod-http || return 1
    # The delivered Ed25519 signing key must load with Python `cryptography` (a test does).
    python3 -c 'import cryptography' 2>/dev/null || pip_install cryptography || return 1
}

pip_install() {
    echo "installing $* (PyPI) ..." >&2
    python3 -m pip install -q --disable-pip-version-check --root-user-action=ignore "$@" >&2
}
