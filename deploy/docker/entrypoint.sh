#!/bin/sh
# The entry point of the Breakwater image: the first argument says which process this is.
#
#   serve <auth|product|cart|order>  the service on gunicorn (gthread), port from <PREFIX>_PORT
#   gateway                          the API gateway: Granian + its front (python -m gateway)
#   migrate <service>                apply the service's migrations once, then exit
#   keys [--private P] [--public P]  write the token key pair unless it exists, then exit
#   help                             this text
#   anything else                    run as given: `locust -f …`, `python -m breakwater …`, `sh`
set -eu

usage() {
    sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'
}

role="${1:-help}"
[ "$#" -gt 0 ] && shift

case "$role" in
    serve)
        service="${1:-}"
        case "$service" in
            auth | product | cart | order) ;;
            *) echo "usage: serve <auth|product|cart|order> (got '${service}')" >&2; exit 2 ;;
        esac
        prefix="$(echo "$service" | tr '[:lower:]' '[:upper:]')"
        # Replicas of a scaled service need distinct ids in logs, traces and /healthz.
        if [ -z "$(printenv "${prefix}_INSTANCE_ID" || true)" ]; then
            export "${prefix}_INSTANCE_ID=${service}-$(hostname)"
        fi
        export BREAKWATER_ROLE="$service"
        exec gunicorn --config /opt/breakwater/gunicorn_service.py "services.${service}:create_app()"
        ;;
    gateway)
        exec python -m gateway
        ;;
    migrate)
        exec python /opt/breakwater/migrate.py "$@"
        ;;
    keys)
        exec python /opt/breakwater/keys.py "$@"
        ;;
    help | --help | -h)
        usage
        ;;
    *)
        exec "$role" "$@"
        ;;
esac
