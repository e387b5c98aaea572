#!/bin/sh
# The verifier image's one entry point, two runtimes (chosen by the container's command):
#   vigia cloud worker                      -> the ECS worker (SQS long polling), the `vigia` CLI
#   cloud.runtime.lambda_handler.handler    -> the Lambda runtime with that handler (the image's default CMD)
# Both read the same VIGIA_* settings from the environment.
set -eu
export PYTHONPATH="${LAMBDA_TASK_ROOT:-/var/task}${PYTHONPATH:+:$PYTHONPATH}"
if [ "${1:-}" = "vigia" ]; then
    shift
    exec python -m vigia.cli "$@"
fi
exec "${LAMBDA_ENTRYPOINT:-/lambda-entrypoint.sh}" "$@"
