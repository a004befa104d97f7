"""kafka-python client for the compatibility suite. kafka-python probes the
broker with ApiVersions v0 and then pins old request versions (Produce <= 7,
Fetch v4, Metadata v0/v1), so it exercises the low end of every range.

usage: kafka_python_client.py create|produce|consume BOOTSTRAP TOPIC COUNT CLIENT
       kafka_python_client.py group BOOTSTRAP TOPIC COUNT GROUP

create makes a 3-partition topic with KafkaAdminClient; produce sends COUNT
messages (client_common.message) at the default acks=1 and checks each
acknowledged partition and offset; consume assigns every partition, seeks
to the beginning and prints COUNT records as JSON lines; group subscribes
as a member of GROUP, prints COUNT records and commits."""

import sys
import time

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic

import client_common as cc


def create(bootstrap, topic):
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="weir-compat")
    try:
        admin.create_topics(
            [NewTopic(topic, num_partitions=cc.PARTITIONS, replication_factor=1)],
            timeout_ms=int(cc.TIMEOUT * 1000),
        )
    finally:
        admin.close()


def produce(bootstrap, topic, count, client):
    p = KafkaProducer(bootstrap_servers=bootstrap, client_id="weir-compat", linger_ms=5)
    futures = []
    for i in range(count):
        part, _, key, value, headers = cc.message(client, i)
        futures.append(
            p.send(
                topic,
                key=key.encode(),
                value=value.encode(),
                headers=[(k, v.encode()) for k, v in headers],
                partition=part,
            )
        )
    p.flush(timeout=cc.TIMEOUT)
    errors = []
    for i, f in enumerate(futures):
        part, off, key, _, _ = cc.message(client, i)
        try:
            md = f.get(timeout=cc.TIMEOUT)
        except Exception as e:  # the future carries the client's error
            errors.append("%s: %r" % (key, e))
            continue
        if md.partition != part or md.offset != off:
            errors.append(
                "%s: acknowledged at p%d@%d, want p%d@%d" % (key, md.partition, md.offset, part, off)
            )
    p.close(timeout=cc.TIMEOUT)
    cc.fail(errors, "produce")


def consume(bootstrap, topic, count):
    c = KafkaConsumer(
        bootstrap_servers=bootstrap,
        client_id="weir-compat",
        group_id=None,
        enable_auto_commit=False,
    )
    tps = [TopicPartition(topic, p) for p in range(cc.PARTITIONS)]
    c.assign(tps)
    c.seek_to_beginning(*tps)
    got, end = 0, cc.consume_deadline()
    try:
        while got < count:
            if time.monotonic() > end:
                cc.fail(["read %d of %d records before the deadline" % (got, count)], "consume")
            for tp, msgs in c.poll(timeout_ms=1000).items():
                for m in msgs:
                    got += 1
                    cc.emit(m.partition, m.offset, m.key, m.value, m.headers)
    finally:
        c.close()


def group(bootstrap, topic, count, group_id):
    c = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        client_id="weir-compat",
        group_id=group_id,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    got, end = 0, cc.consume_deadline()
    try:
        while got < count:
            if time.monotonic() > end:
                cc.fail(["group read %d of %d records before the deadline" % (got, count)], "group")
            for tp, msgs in c.poll(timeout_ms=1000).items():
                for m in msgs:
                    got += 1
                    cc.emit(m.partition, m.offset, m.key, m.value, m.headers)
        c.commit()
    finally:
        c.close()


if __name__ == "__main__":
    cc.run(sys.argv, create, produce, consume, group)
