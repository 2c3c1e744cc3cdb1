#!/usr/bin/env bash
# End-to-end check of the Synapse test scripts themselves (not of factbot):
# install, start, register two users, room create/invite/join/send/sync with
# curl, refusal of a second start, stop, restart with data kept, restart
# after a pause, and M_LIMIT_EXCEEDED with a low rc_message.
#
#   tests/synapse/smoke.sh [PORT]      (default 18008; PORT+1 is used too)
#
# Needs curl and python3. Uses a temp DIR, removed at the end unless
# SMOKE_KEEP=1. Ends with "smoke: N passed, N failed"; exit 0 iff none failed.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=_lib.sh
. "$here/_lib.sh"
port=${1:-18008}
port2=$((port + 1))
url=http://127.0.0.1:$port
dir=$(mktemp -d "${TMPDIR:-/tmp}/factbot-synapse-smoke.XXXXXX")
dir2=$dir.other
passed=0
failed=0

ok() { passed=$((passed + 1)); echo "ok   - $*"; }
bad() { failed=$((failed + 1)); echo "FAIL - $*"; }
check() { # check DESCRIPTION COMMAND...
    local d=$1; shift
    if "$@"; then ok "$d"; else bad "$d"; fi
}
now() { date +%s.%N; }
since() { awk -v s="$1" -v e="$(now)" 'BEGIN { printf "%.2f", e - s }'; }
json() { # json KEY  (reads JSON on stdin, prints a top-level value)
    python3 -c 'import json, sys; v = json.load(sys.stdin).get(sys.argv[1]); print("" if v is None else v)' "$1"
}
# api METHOD PATH TOKEN [BODY] -> prints body, then "HTTP <code>" on the last line
api() {
    local args=(-sS --max-time 30 -X "$1" -H "Authorization: Bearer $3" -w '\nHTTP %{http_code}')
    [[ $# -ge 4 ]] && args+=(-H 'Content-Type: application/json' --data "$4")
    curl "${args[@]}" "$url$2"
}
body() { sed '$d'; }
code() { tail -n1 | cut -d' ' -f2; }

cleanup() {
    "$here/stop.sh" "$dir" >/dev/null 2>&1
    "$here/stop.sh" "$dir2" >/dev/null 2>&1
    [[ -n ${blocker_pid:-} ]] && kill "$blocker_pid" 2>/dev/null
    if [[ ${SMOKE_KEEP:-0} == 1 ]]; then
        echo "kept $dir $dir2"
    else
        rm -rf "$dir" "$dir2"
    fi
}
trap cleanup EXIT

# --- install --------------------------------------------------------------
t=$(now)
check "install.sh" "$here/install.sh"
echo "     install: $(since "$t") s"

# --- cold start -------------------------------------------------------------
t=$(now)
check "start.sh on a fresh DIR" "$here/start.sh" "$dir" "$port"
echo "     cold start (fresh DIR, new database): $(since "$t") s"
pid=$(cat "$dir/synapse.pid")
check "/health answers OK" test "$(curl -fsS "$url/health")" = OK
check "client API answers /versions" curl -fsS -o /dev/null "$url/_matrix/client/versions"
check "federation is not served" test "$(curl -s -o /dev/null -w '%{http_code}' "$url/_matrix/federation/v1/version")" = 404
check "only 127.0.0.1 is bound (no ::1)" bash -c "! curl -s --max-time 2 -o /dev/null 'http://[::1]:$port/health'"

# --- users ------------------------------------------------------------------
alice=$("$here/register.py" --url "$url" --secret-file "$dir/shared_secret" --user alice --password alicepw --admin)
check "register alice (admin)" test "$(json user_id <<<"$alice")" = "@alice:localhost"
bob=$("$here/register.py" --url "$url" --secret-file "$dir/shared_secret" --user bob --password bobpw)
check "register bob" test "$(json user_id <<<"$bob")" = "@bob:localhost"
ta=$(json access_token <<<"$alice")
tb=$(json access_token <<<"$bob")
check "register same user again fails" bash -c "! '$here/register.py' --url '$url' --secret-file '$dir/shared_secret' --user bob --password bobpw 2>/dev/null"
again=$("$here/register.py" --url "$url" --secret-file "$dir/shared_secret" --user bob --password bobpw --login-if-exists)
check "--login-if-exists logs the existing user in" test -n "$(json access_token <<<"$again")"
check "open registration is off" test "$(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/json' --data '{"username":"eve","password":"x","auth":{"type":"m.login.dummy"}}' "$url/_matrix/client/v3/register")" = 403

# --- room flow ------------------------------------------------------------------
t=$(now)
r=$(api POST /_matrix/client/v3/createRoom "$ta" '{"name":"smoke","preset":"private_chat"}')
room=$(body <<<"$r" | json room_id)
check "alice creates a room ($room)" test -n "$room"
r=$(api POST "/_matrix/client/v3/rooms/$room/invite" "$ta" '{"user_id":"@bob:localhost"}')
check "alice invites bob" test "$(code <<<"$r")" = 200
r=$(api POST "/_matrix/client/v3/join/$room" "$tb" '{}')
check "bob joins" test "$(body <<<"$r" | json room_id)" = "$room"
msg="hello from smoke $$"
r=$(api PUT "/_matrix/client/v3/rooms/$room/send/m.room.message/txn1" "$ta" "{\"msgtype\":\"m.text\",\"body\":\"$msg\"}")
event=$(body <<<"$r" | json event_id)
check "alice sends m.text ($event)" test -n "$event"
sync_has_msg() { # sync_has_msg TOKEN -> true if /sync shows $msg in $room
    api GET "/_matrix/client/v3/sync?timeout=0" "$1" | body | python3 -c '
import json, sys
room, msg = sys.argv[1], sys.argv[2]
d = json.load(sys.stdin)
evs = d.get("rooms", {}).get("join", {}).get(room, {}).get("timeline", {}).get("events", [])
sys.exit(0 if any(e.get("type") == "m.room.message" and e.get("content", {}).get("body") == msg for e in evs) else 1)
' "$room" "$msg"
}
check "bob reads the message from /sync" sync_has_msg "$tb"
echo "     create/invite/join/send/sync: $(since "$t") s"

rss=$(awk '/VmRSS/ { print $2 }' "/proc/$pid/status")
echo "     RSS after the room flow: $((rss / 1024)) MiB"

# --- refusals -----------------------------------------------------------------
out=$("$here/start.sh" "$dir2" "$port" 2>&1)
rc=$?
check "second start on the same port fails (rc=$rc)" test $rc -ne 0
check "  ... and says the port is not free" grep -q "port $port on 127.0.0.1 is not free" <<<"$out"
check "  ... and did not leave a pid file" test ! -e "$dir2/synapse.pid"
out=$("$here/start.sh" "$dir" "$port2" 2>&1)
rc=$?
check "second start on the same DIR fails (rc=$rc)" test $rc -ne 0
check "  ... and says it is already running" grep -q "already running" <<<"$out"
check "first Synapse still healthy" test "$(curl -fsS "$url/health")" = OK

# --- stop / restart: data persists ------------------------------------------------
t=$(now)
check "stop.sh" "$here/stop.sh" "$dir"
echo "     stop: $(since "$t") s"
check "process gone (not running; PID 1 may reap it later)" bash -c ". '$here/_lib.sh'; ! proc_running $pid"
check "pid file removed" test ! -e "$dir/synapse.pid"
check "port released" bash -c "! curl -s --max-time 2 -o /dev/null '$url/health'"
check "stop.sh again is a no-op" "$here/stop.sh" "$dir"

t=$(now)
check "start again on the same DIR" "$here/start.sh" "$dir" "$port"
echo "     warm restart (existing DIR): $(since "$t") s"
r=$(api GET /_matrix/client/v3/account/whoami "$tb")
check "bob's old access token still valid" test "$(body <<<"$r" | json user_id)" = "@bob:localhost"
r=$(api GET "/_matrix/client/v3/rooms/$room/messages?dir=b&limit=10" "$tb")
check "the message survived the restart" grep -q "$msg" <<<"$r"

# --- stopped for a few seconds, then started again ------------------------------------
"$here/stop.sh" "$dir" 2>/dev/null
check "health fails while stopped" bash -c "! curl -s --max-time 2 -o /dev/null '$url/health'"
sleep 5
check "start after a 5 s pause" "$here/start.sh" "$dir" "$port"
r=$(api PUT "/_matrix/client/v3/rooms/$room/send/m.room.message/txn2" "$ta" '{"msgtype":"m.text","body":"after pause"}')
check "alice can send after the pause" test "$(code <<<"$r")" = 200

# --- stale pid file is ignored ---------------------------------------------------
"$here/stop.sh" "$dir" 2>/dev/null
echo 1 >"$dir/synapse.pid" # pid 1 is not Synapse
check "start with a stale pid file" "$here/start.sh" "$dir" "$port"

# --- low rc_message -> M_LIMIT_EXCEEDED ------------------------------------------------
"$here/stop.sh" "$dir" 2>/dev/null
check "start with SYNAPSE_RC_MESSAGE_PER_SECOND=0.1 BURST_COUNT=2" \
    env SYNAPSE_RC_MESSAGE_PER_SECOND=0.1 SYNAPSE_RC_MESSAGE_BURST_COUNT=2 "$here/start.sh" "$dir" "$port"
limited=""
for i in 1 2 3 4 5; do
    r=$(api PUT "/_matrix/client/v3/rooms/$room/send/m.room.message/rl$i" "$ta" "{\"msgtype\":\"m.text\",\"body\":\"rl $i\"}")
    if [[ $(code <<<"$r") == 429 ]]; then
        limited=$(body <<<"$r")
        break
    fi
done
check "a burst of sends gets 429 M_LIMIT_EXCEEDED (at send $i)" grep -q M_LIMIT_EXCEEDED <<<"$limited"
check "  ... with retry_after_ms" grep -q retry_after_ms <<<"$limited"
echo "     429 body: $limited"

# --- failure paths of start.sh -------------------------------------------------------
"$here/stop.sh" "$dir" 2>/dev/null
python3 -c 'import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(); time.sleep(60)' "$port" &
blocker_pid=$!
sleep 0.5
out=$("$here/start.sh" "$dir" "$port" 2>&1)
rc=$?
check "start on a port held by another program fails (rc=$rc)" test $rc -ne 0
check "  ... with a clear message" grep -q "is not free" <<<"$out"
kill "$blocker_pid" 2>/dev/null
wait "$blocker_pid" 2>/dev/null
blocker_pid=""

printf 'database: {name: nosuchdb}\n' >"$dir2.bad.yaml"
out=$(SYNAPSE_EXTRA_CONFIG=$dir2.bad.yaml "$here/start.sh" "$dir" "$port" 2>&1)
rc=$?
rm -f "$dir2.bad.yaml"
check "start with a broken config fails (rc=$rc)" test $rc -ne 0
check "  ... says it exited and shows the log" grep -q "exited during start-up" <<<"$out"
check "  ... and leaves no pid file" test ! -e "$dir/synapse.pid"

out=$(SYNAPSE_START_TIMEOUT=0 "$here/start.sh" "$dir" "$port" 2>&1)
rc=$?
check "start that times out fails (rc=$rc)" test $rc -ne 0
check "  ... says so" grep -q "did not answer" <<<"$out"
check "  ... and stopped what it started" test ! -e "$dir/synapse.pid"

echo "smoke: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
