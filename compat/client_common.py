"""Shared by the Python compatibility clients: the message definition (it
must match message() in compat_test.go) and the output format the Go tests
read (one JSON object per record on stdout)."""

import json
import sys
import time

PARTITIONS = 3
TIMEOUT = 90.0  # seconds for a produce phase (compat_test.go: opTimeout)
CONSUME_TIMEOUT = 25.0  # seconds for a consume phase (below consumeTimeout)


def message(client, i):
    """Returns (partition, offset, key, value, headers) of message i."""
    return (
        i % PARTITIONS,
        i // PARTITIONS,
        "k%06d" % i,
        "v%06d-%s-%s" % (i, client, "x" * (i % 97)),
        [("client", client), ("seq", str(i))],
    )


def emit(partition, offset, key, value, headers):
    """Writes one consumed record for the Go side to check."""
    def text(b):
        return None if b is None else b.decode("utf-8", "backslashreplace")
    json.dump(
        {
            "p": partition,
            "o": offset,
            "k": text(key),
            "v": text(value),
            "h": [[k, text(v)] for k, v in (headers or [])],
        },
        sys.stdout,
    )
    sys.stdout.write("\n")


def fail(errors, what):
    """Reports up to 10 errors on stderr and exits 1 if there are any."""
    if not errors:
        return
    sys.stderr.write("%s: %d errors\n" % (what, len(errors)))
    for e in errors[:10]:
        sys.stderr.write("  %s\n" % e)
    sys.exit(1)


def consume_deadline():
    return time.monotonic() + CONSUME_TIMEOUT


def usage(prog):
    sys.stderr.write(
        "usage: %s create|produce|consume BOOTSTRAP TOPIC COUNT CLIENT\n"
        "       %s group BOOTSTRAP TOPIC COUNT GROUP\n" % (prog, prog)
    )
    sys.exit(2)


def run(argv, create, produce, consume, group):
    """Runs the command named by argv[1] with the client's functions:
    create BOOTSTRAP TOPIC, produce/consume BOOTSTRAP TOPIC COUNT, and
    group BOOTSTRAP TOPIC COUNT GROUP."""
    if len(argv) != 6:
        usage(argv[0])
    cmd, bootstrap, topic, count, client = argv[1], argv[2], argv[3], int(argv[4]), argv[5]
    if cmd == "create":
        create(bootstrap, topic)
    elif cmd == "produce":
        produce(bootstrap, topic, count, client)
    elif cmd == "consume":
        consume(bootstrap, topic, count)
    elif cmd == "group":
        group(bootstrap, topic, count, client)
    else:
        usage(argv[0])
