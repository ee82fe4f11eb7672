"""A single-node Apache Kafka (KRaft, combined broker and controller) run from Maven Central's jars.

Used by scripts/stack. The jars are copied once with Maven from pom.xml beside this file into a cache
folder and run on the machine's Java 17; configuration, data and logs live in the node's home folder.
Standard library only: it runs before the project's virtualenv exists.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import struct
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

LOOPBACK = "127.0.0.1"
POM = Path(__file__).resolve().parent / "pom.xml"
# Fixed so that a wiped data dir formats to the same cluster; any base64-encoded UUID would do.
CLUSTER_ID = "ymo4wqXfXcau-vAOwyjb4w"
JVM_OPTIONS = (
    "-Xms256m",
    "-Xmx512m",
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-XX:+ExitOnOutOfMemoryError",
)
_PROBE_CORRELATION_ID = 7
# Kafka's command-line tools by the names of the distribution's kafka-*.sh scripts
TOOLS = {
    "topics": "org.apache.kafka.tools.TopicCommand",
    "consumer-groups": "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand",
    "broker-api-versions": "org.apache.kafka.tools.BrokerApiVersionsCommand",
    "get-offsets": "org.apache.kafka.tools.GetOffsetShell",
    "configs": "kafka.admin.ConfigCommand",
    "console-consumer": "org.apache.kafka.tools.consumer.ConsoleConsumer",
    "console-producer": "org.apache.kafka.tools.ConsoleProducer",
}


class StackError(Exception):
    """A service could not be prepared, started or stopped; the message says what to do."""


@dataclass(frozen=True)
class KafkaNode:
    """Where one local broker lives and listens."""

    home: Path
    cache: Path
    version: str
    port: int
    controller_port: int

    @property
    def address(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    @property
    def libs(self) -> Path:
        return self.cache / f"kafka-{self.version}" / "libs"

    @property
    def properties(self) -> Path:
        return self.home / "server.properties"

    @property
    def logs(self) -> Path:
        return self.home / "logs"

    @property
    def data(self) -> Path:
        return self.home / "data"


def pid_alive(pid: int) -> bool:
    """Whether the process exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def cmdline(pid: int) -> str:
    """The process's command line, arguments joined by spaces."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def port_open(host: str, port: int) -> bool:
    """Whether something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def metadata_brokers(port: int, timeout: float = 2.0) -> list[tuple[str, int]]:
    """Send a Kafka Metadata request (v4, no topics) to the loopback port; return the brokers listed.

    A TCP connect is not enough: a KRaft broker accepts client requests only once it has caught up with
    the metadata log and been unfenced, and a reply that lists brokers shows it serves clients.
    """
    client_id = b"stack-probe"
    # header: api key 3 (Metadata), version 4, correlation id, client id;
    # body: an empty topic array, allow_auto_topic_creation false
    header = struct.pack(">hhih", 3, 4, _PROBE_CORRELATION_ID, len(client_id)) + client_id
    request = header + struct.pack(">ib", 0, 0)
    with socket.create_connection((LOOPBACK, port), timeout=timeout) as sock:
        sock.settimeout(timeout)
        sock.sendall(struct.pack(">i", len(request)) + request)
        reply = _read_exact(sock, struct.unpack(">i", _read_exact(sock, 4))[0])
    correlation_id, _throttle_ms, broker_count = struct.unpack_from(">iii", reply, 0)
    if correlation_id != _PROBE_CORRELATION_ID:
        raise OSError("unexpected Kafka reply")
    offset, brokers = 12, []
    for _ in range(broker_count):
        host_length = struct.unpack_from(">h", reply, offset + 4)[0]  # after the node id
        host = reply[offset + 6 : offset + 6 + host_length].decode()
        offset += 6 + host_length
        broker_port, rack_length = struct.unpack_from(">ih", reply, offset)
        offset += 6 + max(rack_length, 0)  # a null rack has length -1
        brokers.append((host, broker_port))
    return brokers


def _read_exact(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise OSError("connection closed by the broker")
        data += chunk
    return data


def answers(node: KafkaNode) -> bool:
    """Whether the broker answers metadata requests and lists itself."""
    try:
        return (LOOPBACK, node.port) in metadata_brokers(node.port)
    except (OSError, struct.error, UnicodeDecodeError):
        return False


def find_pid(node: KafkaNode) -> int | None:
    """The pid of the broker run from this node's home, from its pid file or else from /proc."""
    marker = str(node.properties)
    pid_file = node.home / "kafka.pid"
    if pid_file.exists():
        pid = int(pid_file.read_text().strip() or 0)
        if pid and pid_alive(pid) and marker in cmdline(pid):
            return pid
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and "kafka.Kafka" in (line := cmdline(int(entry.name))) and marker in line:
            if pid_alive(int(entry.name)):
                return int(entry.name)
    return None


def libs_cached(node: KafkaNode) -> bool:
    """Whether this Kafka version's jars are already in the cache."""
    return (node.libs / ".complete").exists()


def resolve_libs(node: KafkaNode) -> None:
    """Copy this Kafka version's jars and their dependencies into the cache with Maven."""
    maven = shutil.which("mvn")
    if maven is None:
        raise StackError("Maven (mvn) is missing: apt-get install -y maven")
    staging = node.libs.with_name("libs.partial")
    shutil.rmtree(staging, ignore_errors=True)
    command = [
        maven, "-q", "-B", "-f", str(POM), f"-Dkafka.version={node.version}",
        "dependency:copy-dependencies", f"-DoutputDirectory={staging}", "-DincludeScope=runtime",
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
    if result.returncode != 0:
        output = (result.stdout + result.stderr)[-4000:]
        raise StackError(f"Maven could not resolve Kafka {node.version}:\n{output}")
    shutil.rmtree(node.libs, ignore_errors=True)
    staging.rename(node.libs)
    (node.libs / ".complete").write_text(node.version + "\n")


def write_config(node: KafkaNode) -> None:
    """Write server.properties and the log4j2 config; both are regenerated on every start."""
    node.logs.mkdir(parents=True, exist_ok=True)
    listeners = f"PLAINTEXT://{LOOPBACK}:{node.port},CONTROLLER://{LOOPBACK}:{node.controller_port}"
    settings = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": f"1@{LOOPBACK}:{node.controller_port}",
        "listeners": listeners,
        "advertised.listeners": f"PLAINTEXT://{node.address}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "log.dirs": str(node.data),
        # the application creates its topics explicitly, with their partitions and configs
        "auto.create.topics.enable": "false",
        "num.partitions": "6",
        "default.replication.factor": "1",
        "min.insync.replicas": "1",
        "offsets.topic.replication.factor": "1",
        # fewer internal partitions than the default 50: the first consumer group starts faster
        "offsets.topic.num.partitions": "12",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "transaction.state.log.num.partitions": "12",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        # a single-member group need not wait for others to join
        "group.initial.rebalance.delay.ms": "0",
        "log.cleaner.enable": "true",
    }
    node.properties.write_text("".join(f"{key}={value}\n" for key, value in settings.items()))
    (node.home / "log4j2.properties").write_text(
        "status = warn\n"
        "appender.file.type = RollingFile\n"
        "appender.file.name = file\n"
        f"appender.file.fileName = {node.logs}/server.log\n"
        f"appender.file.filePattern = {node.logs}/server.log.%i\n"
        "appender.file.layout.type = PatternLayout\n"
        "appender.file.layout.pattern = [%d] %p %m (%c)%n\n"
        "appender.file.policies.type = Policies\n"
        "appender.file.policies.size.type = SizeBasedTriggeringPolicy\n"
        "appender.file.policies.size.size = 20MB\n"
        "appender.file.strategy.type = DefaultRolloverStrategy\n"
        "appender.file.strategy.max = 3\n"
        "rootLogger.level = info\n"
        "rootLogger.appenderRef.file.ref = file\n"
    )


def _java(
    node: KafkaNode,
    main_class: str,
    *args: str,
    jvm: tuple[str, ...] = (),
    log_config: str = "log4j2.properties",
) -> list[str]:
    search = os.pathsep.join(filter(None, [os.environ.get("JAVA_HOME", "") + "/bin", os.environ.get("PATH")]))
    java = shutil.which("java", path=search)
    if java is None:
        raise StackError("Java 17+ is missing: apt-get install -y openjdk-17-jre-headless")
    logging = f"-Dlog4j2.configurationFile={node.home / log_config}"
    return [java, *jvm, logging, "-cp", f"{node.libs}/*", main_class, *args]


def tool_command(node: KafkaNode, name: str, args: list[str]) -> list[str]:
    """The command line of one of Kafka's tools (see TOOLS), pointed at this broker."""
    if name not in TOOLS:
        raise StackError(f"unknown Kafka tool {name!r}; one of: {', '.join(TOOLS)}")
    if not libs_cached(node):
        raise StackError("Kafka's jars are not resolved yet: run scripts/stack up first")
    # the tools' own logging goes to stderr at WARN, not into the broker's log
    (node.home / "tools-log4j2.properties").write_text(
        "appender.err.type = Console\n"
        "appender.err.name = err\n"
        "appender.err.target = SYSTEM_ERR\n"
        "appender.err.layout.type = PatternLayout\n"
        "appender.err.layout.pattern = [%d] %p %m (%c)%n\n"
        "rootLogger.level = warn\n"
        "rootLogger.appenderRef.err.ref = err\n"
    )
    target = ["--bootstrap-server", node.address]
    return _java(node, TOOLS[name], *target, *args, log_config="tools-log4j2.properties")


def start(node: KafkaNode) -> int:
    """Format the storage on first use and start the broker detached; return its pid."""
    write_config(node)
    if not (node.data / "meta.properties").exists():
        format_args = ("format", "--cluster-id", CLUSTER_ID, "--config", str(node.properties))
        command = _java(node, "kafka.tools.StorageTool", *format_args)
        result = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
        if result.returncode != 0:
            raise StackError(f"formatting Kafka storage failed:\n{result.stdout}{result.stderr}")
    command = _java(node, "kafka.Kafka", str(node.properties), jvm=JVM_OPTIONS)
    with (node.logs / "kafka.out").open("ab") as out:
        # a session of its own: the broker outlives this script and the shell that ran it
        process = subprocess.Popen(  # noqa: S603
            command, cwd=node.home, stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True
        )
    (node.home / "kafka.pid").write_text(f"{process.pid}\n")
    return process.pid


def wait_until_ready(node: KafkaNode, pid: int, timeout: float = 120.0) -> None:
    """Block until the broker serves metadata; fail early if its process dies."""
    deadline = time.monotonic() + timeout
    while not answers(node):
        if not pid_alive(pid):
            raise StackError(f"Kafka exited during start-up; see {node.logs}")
        if time.monotonic() > deadline:
            raise StackError(f"Kafka did not answer within {timeout:.0f} s; see {node.logs}")
        time.sleep(0.2)


def stop(node: KafkaNode, pid: int, timeout: float = 45.0) -> bool:
    """Stop the broker cleanly (SIGTERM), killing it after the timeout; return False if it was killed."""
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    clean = not pid_alive(pid)
    if not clean:
        os.kill(pid, signal.SIGKILL)
        while pid_alive(pid):
            time.sleep(0.1)
    (node.home / "kafka.pid").unlink(missing_ok=True)
    return clean
