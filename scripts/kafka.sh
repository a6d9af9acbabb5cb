#!/usr/bin/env bash
# Local single-node Apache Kafka (KRaft, combined broker+controller) without Docker.
#
#   scripts/kafka.sh start    resolve Kafka from Maven Central (once), format storage (once),
#                             start the broker in the background and wait until it serves metadata
#   scripts/kafka.sh stop     SIGTERM the broker, SIGKILL after 30 s
#   scripts/kafka.sh status   print "running ..." (exit 0) or "not running" (exit 3)
#
# Needs java (17+) and, for the one-time download, mvn:
#   apt-get install -y openjdk-17-jre-headless maven
#
# Environment:
#   KAFKA_BROKER_URL       where the services look for Kafka; if its first host:port already
#                          answers, `start` does nothing. Its port is the broker's port.
#                          (default localhost:9092)
#   KAFKA_PORT             PLAINTEXT port on 127.0.0.1   (default: the port of KAFKA_BROKER_URL)
#   KAFKA_CONTROLLER_PORT  KRaft controller port on 127.0.0.1       (default KAFKA_PORT + 1)
#   KAFKA_DATA_DIR         data, config, log, pid
#                          (default <repo>/.data/kafka, or <repo>/.data/kafka-<port> off 9092,
#                          so brokers on other ports run side by side)
#   KAFKA_CACHE_DIR        resolved jars (outside the repo)
#                          (default ~/.cache/product-ingestion/kafka-<version>)
#   KAFKA_START_TIMEOUT    seconds to wait for readiness            (default 60)
#   KAFKA_HEAP_OPTS        JVM heap flags                           (default -Xmx512m -Xms256m)
set -euo pipefail

# Pinned broker version (Maven Central: org.apache.kafka:kafka_2.13:<version>). 4.4.0 is the newest
# 4.x on Central and was checked with kafkajs 2.2.4: admin createTopics/createPartitions/configs,
# idempotent producer (acks=-1, headers), consumer groups (classic protocol), commits, pause/resume.
KAFKA_VERSION="4.4.0"
KAFKA_SCALA_VERSION="2.13"

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/.." && pwd)"

KAFKA_HOST="127.0.0.1"
if [ -z "${KAFKA_PORT:-}" ] && [ -n "${KAFKA_BROKER_URL:-}" ]; then
  KAFKA_PORT="$(first="${KAFKA_BROKER_URL%%,*}"; first="${first##*:}"; echo "${first%%/*}")"
  [[ "$KAFKA_PORT" =~ ^[0-9]+$ ]] || KAFKA_PORT=""
fi
KAFKA_PORT="${KAFKA_PORT:-9092}"
KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-$((KAFKA_PORT + 1))}"
KAFKA_BROKER_URL="${KAFKA_BROKER_URL:-localhost:${KAFKA_PORT}}"
if [ "$KAFKA_PORT" = 9092 ]; then
  KAFKA_DATA_DIR="${KAFKA_DATA_DIR:-$REPO_ROOT/.data/kafka}"
else
  KAFKA_DATA_DIR="${KAFKA_DATA_DIR:-$REPO_ROOT/.data/kafka-$KAFKA_PORT}"
fi
KAFKA_CACHE_DIR="${KAFKA_CACHE_DIR:-${HOME:-/tmp}/.cache/product-ingestion/kafka-${KAFKA_VERSION}}"
KAFKA_START_TIMEOUT="${KAFKA_START_TIMEOUT:-60}"
KAFKA_HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xmx512m -Xms256m}"

LIBS_DIR="$KAFKA_CACHE_DIR/libs"
RESOLVED_MARKER="$KAFKA_CACHE_DIR/.resolved"
CONFIG_FILE="$KAFKA_DATA_DIR/server.properties"
LOG4J_FILE="$KAFKA_DATA_DIR/log4j2.properties"
LOG_DIRS="$KAFKA_DATA_DIR/logs"
BROKER_LOG="$KAFKA_DATA_DIR/broker.log"
PID_FILE="$KAFKA_DATA_DIR/broker.pid"
LOCK_FILE="$KAFKA_DATA_DIR/.lock"

log() { printf 'kafka: %s\n' "$*" >&2; }
die() { printf 'kafka: error: %s\n' "$*" >&2; exit 1; }

usage() {
  echo "usage: $0 {start|stop|status}" >&2
  exit 2
}

# --- helpers ------------------------------------------------------------------------------

# tcp_open HOST PORT -> 0 if something accepts a TCP connection.
tcp_open() {
  local host="$1" port="$2"
  # The connect happens in a subshell under `timeout` so a black-holed address cannot hang us.
  # shellcheck disable=SC2016 # expanded by the inner shell
  timeout 2 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$host" "$port" 2>/dev/null
}

# First entry of KAFKA_BROKER_URL as "host port" (scheme and IPv6 brackets stripped).
broker_url_host_port() {
  local first="${KAFKA_BROKER_URL%%,*}"
  first="${first#*://}"
  first="${first%%/*}"
  first="${first// /}"
  local host port
  if [[ "$first" == \[*\]:* ]]; then
    host="${first%%]*}"; host="${host#[}"; port="${first##*]:}"
  elif [[ "$first" == *:* ]]; then
    host="${first%:*}"; port="${first##*:}"
  else
    host="$first"; port="9092"
  fi
  echo "${host:-localhost} ${port:-9092}"
}

# metadata_ok HOST PORT -> 0 if the broker answers a Kafka Metadata (v4) request listing >= 1 broker.
# Pure bash: this is exactly what a client does first, so success means the broker serves requests
# (a KRaft broker binds its port before it has caught up with the metadata log).
metadata_ok() {
  # shellcheck disable=SC2016 # expanded by the inner shell
  timeout 5 bash -c '
    set -e
    exec 3<>"/dev/tcp/$1/$2"
    # size=23 | api_key=3 (Metadata) | api_version=4 | correlation_id=7 | client_id="kafka.sh"(8)
    # | topics=null(-1) | allow_auto_topic_creation=false
    printf "\x00\x00\x00\x17\x00\x03\x00\x04\x00\x00\x00\x07\x00\x08kafka.sh\xff\xff\xff\xff\x00" >&3
    # response: size(4) correlation_id(4) throttle_time_ms(4) brokers_count(4) ...
    b=($(dd bs=16 count=1 iflag=fullblock <&3 2>/dev/null | od -An -tu1 -v))
    [ "${#b[@]}" -eq 16 ] || exit 1
    corr=$(( (b[4]<<24) | (b[5]<<16) | (b[6]<<8) | b[7] ))
    brokers=$(( (b[12]<<24) | (b[13]<<16) | (b[14]<<8) | b[15] ))
    [ "$corr" -eq 7 ] && [ "$brokers" -ge 1 ] && [ "$brokers" -lt 1000 ]
  ' _ "$1" "$2" 2>/dev/null
}

read_pid() {
  [ -f "$PID_FILE" ] || return 1
  local pid
  pid="$(tr -dc '0-9' <"$PID_FILE")"
  [ -n "$pid" ] || return 1
  echo "$pid"
}

# pid_alive PID -> 0 if PID is running. A zombie counts as gone: a broker whose starting shell
# has exited belongs to init, which may reap it late, and kill -0 succeeds on a zombie.
pid_alive() {
  kill -0 "$1" 2>/dev/null || return 1
  [ -r /proc/self/stat ] || return 0 # no procfs: kill -0 is all there is
  local stat
  { read -r stat <"/proc/$1/stat"; } 2>/dev/null || return 1
  stat="${stat##*) }"
  [ "${stat:0:1}" != Z ]
}

# Our broker process: pid file points at a live JVM running kafka.Kafka with our config.
managed_pid() {
  local pid
  pid="$(read_pid)" || return 1
  pid_alive "$pid" || return 1
  if [ -r "/proc/$pid/cmdline" ]; then
    tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF "kafka.Kafka $CONFIG_FILE" || return 1
  fi
  echo "$pid"
}

require_java() {
  if ! command -v java >/dev/null 2>&1; then
    die "java not found. Kafka ${KAFKA_VERSION} needs Java 17+; install it with: apt-get install -y openjdk-17-jre-headless maven"
  fi
  local major
  major="$(java -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = //p' | head -1)"
  major="${major#1.}"
  if [ -n "$major" ] && [ "${major%%.*}" -lt 17 ] 2>/dev/null; then
    die "java ${major} found but Kafka ${KAFKA_VERSION} needs Java 17+; install it with: apt-get install -y openjdk-17-jre-headless"
  fi
}

classpath() { echo "$LIBS_DIR/*"; }

# --- resolve ------------------------------------------------------------------------------

# run_mvn LOGFILE ARGS... : batch-mode Maven with its full output appended to LOGFILE; on the
# terminal every 10 downloaded files become one dot. On failure prints the log tail, returns 1.
run_mvn() {
  local mvn_log="$1" rc=0
  shift
  mvn -B "$@" 2>&1 | tee -a "$mvn_log" | awk '
    /Downloaded from/ { if (n++ % 10 == 0) { printf "."; fflush() } }
    END { if (n) printf " %d files downloaded\n", n }' >&2 || rc=$?
  if [ "$rc" -ne 0 ] || ! tail -n 20 "$mvn_log" | grep -q "BUILD SUCCESS"; then
    tail -n 30 "$mvn_log" >&2
    return 1
  fi
}

resolve() {
  if [ -f "$RESOLVED_MARKER" ] && compgen -G "$LIBS_DIR/kafka_${KAFKA_SCALA_VERSION}-${KAFKA_VERSION}.jar" >/dev/null; then
    return 0
  fi
  if ! command -v mvn >/dev/null 2>&1; then
    die "mvn not found; it is needed once to download Kafka ${KAFKA_VERSION} from Maven Central. Install it with: apt-get install -y maven openjdk-17-jre-headless"
  fi
  local started=$SECONDS
  log "resolving kafka_${KAFKA_SCALA_VERSION}:${KAFKA_VERSION} from Maven Central into $KAFKA_CACHE_DIR …"
  mkdir -p "$KAFKA_CACHE_DIR"
  local pom="$KAFKA_CACHE_DIR/pom.xml" tmp_libs="$KAFKA_CACHE_DIR/libs.tmp.$$" mvn_log="$KAFKA_CACHE_DIR/resolve.log"
  # Kafka 4.x logs through slf4j -> log4j2 and depends on log4j-api/log4j-core, but the
  # slf4j -> log4j2 binding is not a dependency of kafka_2.13 (the release tarball adds it).
  # Step 1 copies kafka_2.13 and its runtime deps; step 2 adds the binding that matches the
  # slf4j-api (1.x -> log4j-slf4j-impl, 2.x -> log4j-slf4j2-impl) and log4j-core versions found.
  cat >"$pom" <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<!-- Generated by scripts/kafka.sh: throwaway pom used only to download the Kafka broker jars. -->
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.product-ingestion</groupId>
  <artifactId>kafka-runtime</artifactId>
  <version>${KAFKA_VERSION}</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_${KAFKA_SCALA_VERSION}</artifactId>
      <version>${KAFKA_VERSION}</version>
    </dependency>
  </dependencies>
</project>
EOF
  rm -rf "$tmp_libs"
  : >"$mvn_log"
  if ! run_mvn "$mvn_log" dependency:copy-dependencies -f "$pom" -DincludeScope=runtime -DoutputDirectory="$tmp_libs"; then
    rm -rf "$tmp_libs"
    die "could not resolve org.apache.kafka:kafka_${KAFKA_SCALA_VERSION}:${KAFKA_VERSION} (full log: $mvn_log)"
  fi
  local log4j_version slf4j_version binding
  log4j_version="$(find "$tmp_libs" -name 'log4j-core-*.jar' | sed -E 's/.*log4j-core-(.*)\.jar$/\1/' | head -n 1)"
  slf4j_version="$(find "$tmp_libs" -name 'slf4j-api-*.jar' | sed -E 's/.*slf4j-api-(.*)\.jar$/\1/' | head -n 1)"
  case "$slf4j_version" in
    1.*) binding="log4j-slf4j-impl" ;;
    *) binding="log4j-slf4j2-impl" ;;
  esac
  if ! compgen -G "$tmp_libs/log4j-slf4j*-impl-*.jar" >/dev/null; then
    if ! run_mvn "$mvn_log" dependency:copy -f "$pom" \
      -Dartifact="org.apache.logging.log4j:${binding}:${log4j_version:-2.24.3}" -DoutputDirectory="$tmp_libs"; then
      rm -rf "$tmp_libs"
      die "could not resolve org.apache.logging.log4j:${binding}:${log4j_version:-2.24.3} (full log: $mvn_log)"
    fi
  fi
  rm -rf "$LIBS_DIR"
  mv "$tmp_libs" "$LIBS_DIR"
  echo "$KAFKA_VERSION" >"$RESOLVED_MARKER"
  log "resolved $(find "$LIBS_DIR" -name '*.jar' | wc -l) jars ($(du -sh "$LIBS_DIR" | cut -f1)) in $((SECONDS - started))s"
}

# --- config / format ----------------------------------------------------------------------

write_config() {
  mkdir -p "$KAFKA_DATA_DIR" "$LOG_DIRS"
  cat >"$CONFIG_FILE" <<EOF
# Generated by scripts/kafka.sh on every start; edit the script, not this file.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@${KAFKA_HOST}:${KAFKA_CONTROLLER_PORT}
listeners=PLAINTEXT://${KAFKA_HOST}:${KAFKA_PORT},CONTROLLER://${KAFKA_HOST}:${KAFKA_CONTROLLER_PORT}
advertised.listeners=PLAINTEXT://${KAFKA_HOST}:${KAFKA_PORT}
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=${LOG_DIRS}
num.partitions=3
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=3
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=3
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
delete.topic.enable=true
log.retention.hours=168
log.segment.bytes=104857600
num.network.threads=2
num.io.threads=4
EOF
  # Everything goes to stdout, which start() redirects to broker.log; the state-change and
  # request loggers that the stock config routes to extra files are kept quiet.
  cat >"$LOG4J_FILE" <<'EOF'
# Generated by scripts/kafka.sh.
status = warn
appender.out.type = Console
appender.out.name = STDOUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.out.ref = STDOUT
logger.kafka.name = kafka
logger.kafka.level = INFO
logger.apache.name = org.apache.kafka
logger.apache.level = INFO
logger.request.name = kafka.request.logger
logger.request.level = WARN
logger.statechange.name = state.change.logger
logger.statechange.level = WARN
logger.controller.name = org.apache.kafka.controller
logger.controller.level = INFO
logger.authorizer.name = kafka.authorizer.logger
logger.authorizer.level = WARN
logger.clientsconfig.name = org.apache.kafka.clients
logger.clientsconfig.level = WARN
logger.commonconfig.name = org.apache.kafka.common.config
logger.commonconfig.level = WARN
logger.storage.name = org.apache.kafka.storage.internals.log
logger.storage.level = WARN
logger.eventperf.name = org.apache.kafka.controller.EventPerformanceMonitor
logger.eventperf.level = WARN
EOF
}

# JVM flags shared by the tools and the broker (KAFKA_HEAP_OPTS is split on whitespace).
java_opts() {
  local -a heap
  read -r -a heap <<<"$KAFKA_HEAP_OPTS"
  JAVA_OPTS=("${heap[@]}" -XX:+UseG1GC -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true
    -Dlog4j2.configurationFile="$LOG4J_FILE" -Dkafka.logs.dir="$KAFKA_DATA_DIR" -cp "$(classpath)")
}

run_java() {
  java_opts
  java "${JAVA_OPTS[@]}" "$@"
}

format_storage() {
  if [ -f "$LOG_DIRS/meta.properties" ]; then
    return 0
  fi
  log "formatting storage in $LOG_DIRS …"
  local cluster_id
  cluster_id="$(run_java kafka.tools.StorageTool random-uuid 2>>"$BROKER_LOG" | tail -n 1 | tr -d '[:space:]')"
  [ -n "$cluster_id" ] || die "could not generate a cluster id (see $BROKER_LOG)"
  local out
  if ! out="$(run_java kafka.tools.StorageTool format --cluster-id "$cluster_id" --config "$CONFIG_FILE" 2>&1)"; then
    printf '%s\n' "$out" >&2
    die "formatting storage failed"
  fi
  printf '%s\n' "$out" >>"$BROKER_LOG"
}

# --- commands -----------------------------------------------------------------------------

# print_log_tail: the broker log's last lines, for a start that failed.
print_log_tail() {
  echo "----- last 40 lines of $BROKER_LOG -----" >&2
  tail -n 40 "$BROKER_LOG" >&2 || true
}

# wait_ready PID DEADLINE -> 0 once the broker serves metadata, 1 if PID is gone, 2 at DEADLINE
# (in $SECONDS).
wait_ready() {
  local pid="$1" deadline="$2"
  while :; do
    pid_alive "$pid" || return 1
    if tcp_open "$KAFKA_HOST" "$KAFKA_PORT" && metadata_ok "$KAFKA_HOST" "$KAFKA_PORT"; then
      return 0
    fi
    [ "$SECONDS" -lt "$deadline" ] || return 2
    sleep 0.5
  done
}

# launch_broker: starts the JVM in its own session; sets BROKER_PID from the pid file.
launch_broker() {
  # Whatever pid file is left belongs to a broker that is gone (managed_pid said so, e.g. after a
  # SIGKILL); read as the new broker's, it would make a healthy start look failed.
  rm -f "$PID_FILE"
  # setsid: own session, so the broker survives the calling shell / CI step and its Ctrl-C.
  # The inner shell writes its own pid and execs java, so the pid file names the JVM.
  java_opts
  # shellcheck disable=SC2016 # $$/$1/$@ belong to the inner shell
  setsid nohup bash -c 'echo $$ >"$1" || exit 1; shift; exec "$@"' _ "$PID_FILE" \
    java "${JAVA_OPTS[@]}" kafka.Kafka "$CONFIG_FILE" >>"$BROKER_LOG" 2>&1 </dev/null 9>&- &
  local launcher=$!
  BROKER_PID=""
  # The child writes the pid file once forked; 10 s leaves room for a loaded machine.
  for _ in $(seq 1 100); do
    BROKER_PID="$(read_pid 2>/dev/null)" && break
    sleep 0.1
  done
  if [ -z "$BROKER_PID" ]; then
    kill -TERM "$launcher" 2>/dev/null || true
    print_log_tail
    die "broker did not start (no pid file $PID_FILE after 10s)"
  fi
}

cmd_start() {
  local url_host url_port
  read -r url_host url_port < <(broker_url_host_port)
  if tcp_open "$url_host" "$url_port"; then
    log "already running: something answers on ${url_host}:${url_port} (KAFKA_BROKER_URL); not starting another broker"
    return 0
  fi

  require_java
  mkdir -p "$KAFKA_DATA_DIR"
  # Serialise concurrent `start`s (e.g. several services' dev scripts) on the same data dir.
  if command -v flock >/dev/null 2>&1; then
    exec 9>"$LOCK_FILE"
    flock -w 120 9 || die "another 'start' holds $LOCK_FILE for over 120s"
    if tcp_open "$url_host" "$url_port"; then
      log "already running: ${url_host}:${url_port} answers (started concurrently)"
      return 0
    fi
  fi

  local started=$SECONDS pid rc=0
  if pid="$(managed_pid)"; then
    log "broker pid $pid is alive but ${KAFKA_HOST}:${KAFKA_PORT} does not answer yet; waiting for it"
    wait_ready "$pid" $((SECONDS + KAFKA_START_TIMEOUT)) || rc=$?
    case "$rc" in
      0)
        log "started pid $pid on ${KAFKA_HOST}:${KAFKA_PORT} in $((SECONDS - started))s"
        return 0
        ;;
      # e.g. a broker killed just before: its storage locks are released with it, start afresh
      1) log "broker pid $pid exited before it answered; starting a new one" ;;
      *)
        print_log_tail
        die "broker pid $pid not ready on ${KAFKA_HOST}:${KAFKA_PORT} after ${KAFKA_START_TIMEOUT}s (still running; '$0 stop' to kill it)"
        ;;
    esac
  fi

  # Checked before anything is written: the broker could not bind it.
  if tcp_open "$KAFKA_HOST" "$KAFKA_CONTROLLER_PORT"; then
    die "port ${KAFKA_HOST}:${KAFKA_CONTROLLER_PORT} (controller) is in use by another process; set KAFKA_CONTROLLER_PORT"
  fi
  resolve
  write_config
  # keep the previous run's log for post-mortems
  [ -f "$BROKER_LOG" ] && mv -f "$BROKER_LOG" "$BROKER_LOG.1"
  : >"$BROKER_LOG"
  format_storage
  log "starting Kafka ${KAFKA_VERSION} on ${KAFKA_HOST}:${KAFKA_PORT} (log: $BROKER_LOG)"
  launch_broker
  pid="$BROKER_PID"

  rc=0
  wait_ready "$pid" $((SECONDS + KAFKA_START_TIMEOUT)) || rc=$?
  case "$rc" in
    0) ;;
    1)
      print_log_tail
      [ "$(read_pid 2>/dev/null)" != "$pid" ] || rm -f "$PID_FILE"
      die "broker process $pid exited during startup"
      ;;
    *)
      print_log_tail
      die "broker pid $pid not ready on ${KAFKA_HOST}:${KAFKA_PORT} after ${KAFKA_START_TIMEOUT}s (still running; '$0 stop' to kill it)"
      ;;
  esac
  log "started pid $pid on ${KAFKA_HOST}:${KAFKA_PORT} in $((SECONDS - started))s"
}

cmd_stop() {
  local pid
  if ! pid="$(managed_pid)"; then
    rm -f "$PID_FILE"
    if tcp_open "$KAFKA_HOST" "$KAFKA_PORT"; then
      log "not running from $KAFKA_DATA_DIR (no live pid in $PID_FILE), but ${KAFKA_HOST}:${KAFKA_PORT} answers: another broker, left alone"
    else
      log "not running"
    fi
    return 0
  fi
  log "stopping pid $pid …"
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 60); do
    pid_alive "$pid" || break
    sleep 0.5
  done
  if pid_alive "$pid"; then
    log "pid $pid still alive after 30s; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    for _ in $(seq 1 20); do
      pid_alive "$pid" || break
      sleep 0.25
    done
  fi
  rm -f "$PID_FILE"
  log "stopped"
}

cmd_status() {
  local pid
  if pid="$(managed_pid)"; then
    if metadata_ok "$KAFKA_HOST" "$KAFKA_PORT"; then
      echo "running (pid $pid, ${KAFKA_HOST}:${KAFKA_PORT}, Kafka ${KAFKA_VERSION})"
    else
      echo "running (pid $pid, starting: ${KAFKA_HOST}:${KAFKA_PORT} not serving yet)"
    fi
    return 0
  fi
  local url_host url_port
  read -r url_host url_port < <(broker_url_host_port)
  if tcp_open "$url_host" "$url_port"; then
    echo "running (${url_host}:${url_port} answers; not started by this script)"
    return 0
  fi
  echo "not running"
  return 3
}

case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  *) usage ;;
esac
