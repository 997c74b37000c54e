# Sourced by .ci/run (and tests/it/embedded.rs): `cleanup` stops the
# processes whose environment holds PM_CI_RUN=$PM_CI_RUN, and nothing else.
ours() {
  local env pid
  for env in /proc/[0-9]*/environ; do
    pid=${env#/proc/}; pid=${pid%/environ}
    [ "$pid" = "$$" ] && continue
    # Not the commands of this function's own pipelines.
    [ "$(awk '/^PPid:/ {print $2}' "/proc/$pid/status" 2>/dev/null)" = "$$" ] && continue
    if { tr '\0' '\n' < "$env"; } 2>/dev/null | grep -qxF "PM_CI_RUN=$PM_CI_RUN"; then
      echo "$pid"
    fi
  done
}
cleanup() {
  local pids
  pids=$(ours)
  [ -z "$pids" ] && return 0
  # SIGINT is PostgreSQL's fast shutdown; what is left after 5 s is killed.
  kill -INT $pids 2>/dev/null || true
  for _ in $(seq 50); do
    pids=$(ours)
    [ -z "$pids" ] && return 0
    sleep 0.1
  done
  kill -KILL $pids 2>/dev/null || true
}
