# Background services, each the leader of a session of its own: what stack.sh and distributed.sh
# share. Sourced; the caller sets RUN (pid files) and LOGS (one log per service). Because launch
# starts a service with setsid, its pid is its session's id, and stopping the session ends every
# process the service started (workers that ignore SIGTERM, servers that outlive their parent).

pid_of() { [ -f "$RUN/$1.pid" ] && cat "$RUN/$1.pid" || true; }
alive() { local pid; pid=$(pid_of "$1"); [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; }
port_busy() { (echo >"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# launch NAME CMD...: CMD in the background in a session of its own, logging to $LOGS/NAME.log.
launch() {
  local name=$1; shift
  setsid "$@" >"$LOGS/$name.log" 2>&1 </dev/null &
  echo $! >"$RUN/$name.pid"
}

# stop_sessions NAME...: TERM these services' sessions at once, KILL what is left after
# STOP_WAIT_S seconds (default 15), drop their pid files. Prints NAME:SESSION for each it signalled.
stop_sessions() {
  local s pid sids=() left
  for s in "$@"; do
    pid=$(pid_of "$s")
    [ -n "$pid" ] || continue
    sids+=("$pid")
    echo "$s:$pid"
    pkill -TERM -s "$pid" 2>/dev/null || true
  done
  for _ in $(seq 1 $((${STOP_WAIT_S:-15} * 2))); do
    left=0
    for pid in "${sids[@]}"; do pgrep -s "$pid" >/dev/null 2>&1 && left=1; done
    [ $left = 0 ] && break
    sleep 0.5
  done
  for pid in "${sids[@]}"; do
    if pgrep -s "$pid" >/dev/null 2>&1; then
      echo "session $pid: escalating to SIGKILL for what ignored SIGTERM" >&2
      pkill -KILL -s "$pid" 2>/dev/null || true
    fi
  done
  for s in "$@"; do rm -f "$RUN/$s.pid"; done
}
