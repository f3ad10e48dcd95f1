"""A naive Kafka-to-HTTP bridge: the baseline for benches/source_throughput.rs.

What someone writes in an afternoon: a plain confluent-kafka consumer with auto-commit (offsets are
stored as soon as a record is handed over, delivered or not), and aiohttp POSTing each record value
as a binary-mode CloudEvent, 64 requests in flight. No retries, no ordering, no dead letters.

usage: naive_bridge.py BOOTSTRAP TOPIC GROUP SINK_URL SESSION_TIMEOUT_MS
"""

import asyncio
import signal
import sys

import aiohttp
from confluent_kafka import Consumer

IN_FLIGHT = 64


async def bridge(bootstrap, topic, group, sink, session_timeout_ms):
    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": group,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": True,
        "session.timeout.ms": int(session_timeout_ms),
    })
    consumer.subscribe([topic])
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    slots = asyncio.Semaphore(IN_FLIGHT)
    tasks = set()
    source = f"/apis/v1/namespaces/bench/kafkasources/naive#{topic}"

    async def post(session, msg):
        headers = {
            "ce-specversion": "1.0",
            "ce-id": f"{msg.partition()}-{msg.offset()}",
            "ce-source": source,
            "ce-type": "dev.knative.kafka.event",
        }
        try:
            async with session.post(sink, data=msg.value(), headers=headers) as response:
                await response.read()
        except aiohttp.ClientError as error:
            print(f"POST failed: {error}", file=sys.stderr)
        finally:
            slots.release()

    connector = aiohttp.TCPConnector(limit=IN_FLIGHT)
    async with aiohttp.ClientSession(connector=connector) as session:
        while not stop.is_set():
            # consume() blocks, so it runs on a thread while the loop serves the requests.
            msgs = await loop.run_in_executor(None, consumer.consume, 500, 0.1)
            for msg in msgs:
                if msg.error():
                    continue
                await slots.acquire()
                task = asyncio.create_task(post(session, msg))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
        if tasks:
            await asyncio.wait(tasks, timeout=10)
    consumer.close()


if __name__ == "__main__":
    asyncio.run(bridge(*sys.argv[1:6]))
