#!/usr/bin/env bash
# calculate-discount.sh: an external cairn worker for the CalculateDiscount
# activity, in bash and curl only (the protocol is in docs/activities.md).
#
# It long-polls cairn for CalculateDiscount tasks, computes the discount for
# the user id in the task's input (10 + length(user) % 3 * 5 percent, as the
# expr binding of workflows/reserve-ticket.yaml does) and completes the task.
# An input that is not a JSON string fails the task, without retries.
#
# Try it with the variant of ReserveTicket whose CalculateDiscount waits for
# a worker:
#
#   cairn serve &
#   curl -X PUT --data-binary @examples/worker/reserve-ticket-worker.yaml \
#        -H 'Content-Type: application/yaml' \
#        http://127.0.0.1:8080/v1/workflows/ReserveTicketWorker
#   examples/worker/calculate-discount.sh &
#   curl -X POST -H 'Content-Type: application/json' -d '"user1"' \
#        http://127.0.0.1:8080/runtime/webhooks/durabletask/orchestrators/ReserveTicketWorker
#
# Environment:
#   CAIRN_URL      cairn's base URL (default http://127.0.0.1:8080)
#   CAIRN_API_KEY  an API key, when the server requires one
#   WORKER_ID      this worker's id, unique among running workers
#                  (default calc-<host>-<pid>)
#   WAIT_SECONDS   how long one poll waits for a task (default 30, at most 60)
#   MAX_TASKS      stop after this many tasks (default 0: run until stopped)
#
# Ctrl-C or SIGTERM stops it after the task in hand.

set -u

url=${CAIRN_URL:-http://127.0.0.1:8080}
url=${url%/}
worker=${WORKER_ID:-calc-$(hostname)-$$}
wait_seconds=${WAIT_SECONDS:-30}
max_tasks=${MAX_TASKS:-0}
auth=()
if [ -n "${CAIRN_API_KEY:-}" ]; then
  auth=(-H "Authorization: Bearer $CAIRN_API_KEY")
fi

stopping=0
trap 'stopping=1' INT TERM

log() { printf '%s calculate-discount[%s]: %s\n' "$(date -u +%H:%M:%S)" "$worker" "$*" >&2; }

# post PATH JSON: POST JSON to cairn; sets $status (000 when there was no
# answer) and $body.
post() {
  local out
  if ! out=$(curl -sS -X POST ${auth[@]+"${auth[@]}"} \
      -H 'Content-Type: application/json' -H 'Accept: application/json' \
      --max-time $((wait_seconds + 15)) --data-binary "$2" \
      -w '\n%{http_code}' "$url$1"); then
    status=000 body=
    return
  fi
  status=${out##*$'\n'}
  body=${out%$'\n'*}
  if [ "$body" = "$out" ]; then body=; fi
}

# string_field NAME: the raw (still JSON-escaped) value of string field NAME
# of $body; empty and status 1 when NAME is absent or not a string.
string_field() {
  local v
  v=$(sed -nE 's/.*"'"$1"'"[[:space:]]*:[[:space:]]*"(([^"\\]|\\.)*)".*/\1/p' <<<"$body")
  printf '%s' "$v"
  grep -qE '"'"$1"'"[[:space:]]*:[[:space:]]*"' <<<"$body"
}

# number_field NAME: the value of integer field NAME of $body.
number_field() {
  sed -nE 's/.*"'"$1"'"[[:space:]]*:[[:space:]]*(-?[0-9]+).*/\1/p' <<<"$body"
}

# json_unescape TEXT: decode the escapes of a JSON string's contents.
json_unescape() {
  local s=$1
  s=${s//\\\//\/}      # \/ → /
  s=${s//\\\"/\"}      # \" → "
  printf '%b' "$s"     # \\ \n \t \uXXXX …
}

# complete TASK_ID RESULT_JSON
complete() {
  post "/v1/tasks/$1/complete" "{\"result\":$2}"
  case $status in
    200) log "completed $1: $2" ;;
    404) log "task $1 was already closed (completed elsewhere, or its instance is gone)" ;;
    *) log "completing $1 failed: HTTP $status $body (the task runs again after its lease)" ;;
  esac
}

# fail TASK_ID TYPE MESSAGE RETRYABLE: MESSAGE must not hold quotes or
# backslashes (this script builds JSON by hand).
fail() {
  post "/v1/tasks/$1/fail" "{\"error\":{\"type\":\"$2\",\"message\":\"$3\",\"retryable\":$4}}"
  case $status in
    200) log "failed $1: $2: $3" ;;
    404) log "task $1 was already closed" ;;
    *) log "failing $1 failed: HTTP $status $body" ;;
  esac
}

# heartbeat TASK_ID: renew the lease; status 1 when the task is no longer
# ours. Quick work like this needs none; long work calls it at least every
# leaseSeconds/3.
heartbeat() {
  post "/v1/tasks/$1/heartbeat" "{\"workerId\":\"$worker\"}"
  case $status in
    200) return 0 ;;
    404 | 409) log "lost task $1 (HTTP $status): dropping it"; return 1 ;;
    *) return 0 ;; # the server is away: keep working, try again later
  esac
}

log "polling $url for CalculateDiscount tasks"
done_tasks=0
backoff=1
poll="{\"activities\":[\"CalculateDiscount\"],\"workerId\":\"$worker\",\"waitSeconds\":$wait_seconds}"
while [ "$stopping" = 0 ]; do
  post /v1/tasks/poll "$poll"
  case $status in
    200) backoff=1 ;;
    204) backoff=1; continue ;;
    *)
      [ "$stopping" = 0 ] || break
      log "poll failed: HTTP $status $body; retrying in ${backoff}s"
      sleep "$backoff"
      backoff=$((backoff < 30 ? backoff * 2 : 30))
      continue
      ;;
  esac

  task_id=$(string_field taskId) || { log "poll answer without a taskId: $body"; continue; }
  attempt=$(number_field attempt)
  user=$(string_field input)
  is_string=$?
  log "got task $task_id (attempt ${attempt:-?})"
  heartbeat "$task_id" || continue

  if [ "$is_string" = 0 ]; then
    user=$(json_unescape "$user")
    # Characters, not bytes, as expr's len() counts.
    len=$( (LC_ALL=C.UTF-8; printf %s "${#user}") 2>/dev/null)
    complete "$task_id" $((10 + len % 3 * 5))
  else
    fail "$task_id" InvalidInput "CalculateDiscount wants a user id as a JSON string" false
  fi

  done_tasks=$((done_tasks + 1))
  if [ "$max_tasks" -gt 0 ] && [ "$done_tasks" -ge "$max_tasks" ]; then
    break
  fi
done
log "stopped after $done_tasks task(s)"
