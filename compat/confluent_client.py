"""confluent-kafka-python (librdkafka) client for the compatibility suite.

usage: confluent_client.py create|produce|consume BOOTSTRAP TOPIC COUNT CLIENT
       confluent_client.py group BOOTSTRAP TOPIC COUNT GROUP

create makes a 3-partition topic with the AdminClient; produce sends COUNT
messages (client_common.message) with an idempotent producer and checks
each delivery report's partition and offset; consume reads every partition
from offset 0 to its end and prints the records as JSON lines; group
subscribes as a member of GROUP, prints COUNT records and commits."""

import sys
import time

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

import client_common as cc


def create(bootstrap, topic):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics(
        [NewTopic(topic, num_partitions=cc.PARTITIONS, replication_factor=1)],
        request_timeout=cc.TIMEOUT,
    )
    futures[topic].result(timeout=cc.TIMEOUT)


def produce(bootstrap, topic, count, client):
    p = Producer(
        {
            "bootstrap.servers": bootstrap,
            "client.id": "weir-compat",
            "enable.idempotence": True,
            "linger.ms": 5,
        }
    )
    errors = []

    def report(i):
        part, off, key, _, _ = cc.message(client, i)

        def cb(err, msg):
            if err is not None:
                errors.append("%s: %s" % (key, err))
            elif msg.partition() != part or msg.offset() != off:
                errors.append(
                    "%s: acknowledged at p%d@%d, want p%d@%d"
                    % (key, msg.partition(), msg.offset(), part, off)
                )

        return cb

    for i in range(count):
        part, _, key, value, headers = cc.message(client, i)
        while True:
            try:
                p.produce(
                    topic,
                    key=key,
                    value=value,
                    partition=part,
                    headers=headers,
                    on_delivery=report(i),
                )
                break
            except BufferError:
                p.poll(0.1)
        p.poll(0)
    left = p.flush(cc.TIMEOUT)
    if left:
        errors.append("%d messages not delivered before the deadline" % left)
    cc.fail(errors, "produce")


def consume(bootstrap, topic, count):
    c = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "weir-compat-" + topic,
            "enable.auto.commit": False,
            "enable.partition.eof": True,
        }
    )
    c.assign([TopicPartition(topic, p, 0) for p in range(cc.PARTITIONS)])
    eof, got, end = set(), 0, cc.consume_deadline()
    try:
        while len(eof) < cc.PARTITIONS:
            if time.monotonic() > end:
                cc.fail(["read %d of %d records before the deadline" % (got, count)], "consume")
            m = c.poll(1.0)
            if m is None:
                continue
            if m.error() is not None:
                if m.error().code() == KafkaError._PARTITION_EOF:
                    eof.add(m.partition())
                    continue
                cc.fail([str(m.error())], "consume")
            eof.discard(m.partition())
            got += 1
            cc.emit(m.partition(), m.offset(), m.key(), m.value(), m.headers())
    finally:
        c.close()


def group(bootstrap, topic, count, group_id):
    c = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group_id,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    c.subscribe([topic])
    got, end = 0, cc.consume_deadline()
    try:
        while got < count:
            if time.monotonic() > end:
                cc.fail(["group read %d of %d records before the deadline" % (got, count)], "group")
            m = c.poll(1.0)
            if m is None:
                continue
            if m.error() is not None:
                cc.fail([str(m.error())], "group")
            got += 1
            cc.emit(m.partition(), m.offset(), m.key(), m.value(), m.headers())
        c.commit(asynchronous=False)
    finally:
        c.close()


if __name__ == "__main__":
    cc.run(sys.argv, create, produce, consume, group)
