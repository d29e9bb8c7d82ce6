package streamhouse.compat;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

/**
 * Java kafka-clients driver for the multi-agent failover test (test_cluster_clients.py).
 *
 * usage: FailoverProduceConsume BOOTSTRAP TOPIC COUNT RATE PARTITIONS
 *
 * The topic must exist. A producer with the client's DEFAULT settings (acks=all, idempotent) sends
 * COUNT values "java-I" to partition I % PARTITIONS at RATE per second, while an assign() +
 * seekToBeginning() consumer reads every partition at the same time. Prints "STARTED" once the first
 * send is acknowledged (the test then kills a leader), and at the end "RESULT key=value ..." and
 * "PROBLEM ..." lines. Exits 1 when a send failed or the consumer missed an acknowledged value.
 */
public final class FailoverProduceConsume {
    public static void main(String[] args) throws Exception {
        if (args.length != 5) {
            System.err.println("usage: FailoverProduceConsume BOOTSTRAP TOPIC COUNT RATE PARTITIONS");
            System.exit(2);
        }
        String bootstrap = args[0];
        String topic = args[1];
        int count = Integer.parseInt(args[2]);
        double rate = Double.parseDouble(args[3]);
        int partitions = Integer.parseInt(args[4]);
        List<String> problems = Collections.synchronizedList(new ArrayList<>());

        // ---- consumer, running during the whole produce phase ---------------------------------------
        Map<String, Long> consumed = new ConcurrentHashMap<>();
        AtomicInteger duplicates = new AtomicInteger();
        AtomicInteger records = new AtomicInteger();
        Set<String> acked = ConcurrentHashMap.newKeySet();
        CountDownLatch produced = new CountDownLatch(1);
        Thread consumerThread = new Thread(() -> {
            Properties cp = new Properties();
            cp.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
            cp.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
            cp.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
            cp.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
            cp.put(ConsumerConfig.CHECK_CRCS_CONFIG, "true");
            try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(cp)) {
                List<TopicPartition> tps = new ArrayList<>();
                for (int p = 0; p < partitions; p++) {
                    tps.add(new TopicPartition(topic, p));
                }
                consumer.assign(tps);
                consumer.seekToBeginning(tps);
                long deadline = Long.MAX_VALUE;
                while (System.currentTimeMillis() < deadline) {
                    for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofMillis(200))) {
                        records.incrementAndGet();
                        Long prev = consumed.putIfAbsent(r.value(), ((long) r.partition() << 40) | r.offset());
                        if (prev != null) {
                            duplicates.incrementAndGet();
                        }
                    }
                    if (produced.getCount() == 0) {
                        if (deadline == Long.MAX_VALUE) {
                            deadline = System.currentTimeMillis() + 60_000;
                        }
                        if (consumed.keySet().containsAll(acked)) {
                            break;
                        }
                    }
                }
            } catch (Exception e) {
                problems.add("consumer failed: " + e);
            }
        }, "consumer");
        consumerThread.start();

        // ---- producer ------------------------------------------------------------------------------
        Properties pp = new Properties();
        pp.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        pp.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        pp.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        pp.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, 60_000);
        pp.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, 30_000);
        AtomicInteger sendErrors = new AtomicInteger();
        AtomicLong[] lastAck = new AtomicLong[partitions];
        for (int p = 0; p < partitions; p++) {
            lastAck[p] = new AtomicLong(0);
        }
        AtomicLong maxGap = new AtomicLong(0);  // longest time between two acks of one partition
        AtomicInteger ackCount = new AtomicInteger();
        long start = System.nanoTime();
        try (KafkaProducer<String, String> producer = new KafkaProducer<>(pp)) {
            for (int i = 0; i < count; i++) {
                long due = start + (long) (i * 1e9 / rate);
                long wait = due - System.nanoTime();
                if (wait > 0) {
                    Thread.sleep(wait / 1_000_000, (int) (wait % 1_000_000));
                }
                String value = "java-" + i;
                producer.send(new ProducerRecord<>(topic, i % partitions, null, value), (md, e) -> {
                    if (e != null) {
                        if (sendErrors.incrementAndGet() <= 5) {
                            problems.add("send of " + value + " failed: " + e);
                        }
                        return;
                    }
                    long now = System.nanoTime();
                    long prev = lastAck[md.partition()].getAndSet(now);
                    if (prev != 0) {
                        maxGap.accumulateAndGet((now - prev) / 1_000_000, Math::max);
                    }
                    acked.add(value);
                    if (ackCount.incrementAndGet() == 1) {
                        System.out.println("STARTED");
                        System.out.flush();
                    }
                });
            }
            producer.flush();
        }
        produced.countDown();
        consumerThread.join(90_000);

        int missing = 0;
        for (String v : acked) {
            if (!consumed.containsKey(v)) {
                if (++missing <= 5) {
                    problems.add("acknowledged " + v + " never consumed");
                }
            }
        }
        System.out.println("RESULT produced=" + count + " acked=" + acked.size() + " send_errors=" + sendErrors.get()
                + " consumed=" + consumed.size() + " records=" + records.get() + " duplicates=" + duplicates.get()
                + " missing=" + missing + " max_partition_ack_gap_ms=" + maxGap.get());
        for (String p : problems) {
            System.out.println("PROBLEM " + p);
        }
        System.exit(problems.isEmpty() && acked.size() == count && missing == 0 ? 0 : 1);
    }
}
