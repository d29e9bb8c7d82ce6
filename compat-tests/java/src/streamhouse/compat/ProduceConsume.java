package streamhouse.compat;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

/**
 * Java kafka-clients driver for the StreamHouse compatibility suite.
 *
 * usage: ProduceConsume BOOTSTRAP TOPIC COUNT PARTITIONS COMPRESSION
 *   PARTITIONS > 0: create the topic with the Admin client first; 0: rely on auto-creation.
 *   COMPRESSION: none|gzip|snappy|lz4|zstd ("none" leaves the producer config at its default).
 *
 * The producer uses the client's DEFAULT settings (acks=all, enable.idempotence=true, as
 * kafka-console-producer does) apart from the serializers and, if asked, compression. Then a
 * KafkaConsumer with assign() + seekToBeginning() reads every partition to its end offset. Prints
 * "RESULT key=value ..." lines and exits 1 on any mismatch.
 */
public final class ProduceConsume {
    private static final long DEADLINE_MS = 60_000;

    public static void main(String[] args) throws Exception {
        if (args.length != 5) {
            System.err.println("usage: ProduceConsume BOOTSTRAP TOPIC COUNT PARTITIONS COMPRESSION");
            System.exit(2);
        }
        String bootstrap = args[0];
        String topic = args[1];
        int count = Integer.parseInt(args[2]);
        int partitions = Integer.parseInt(args[3]);
        String compression = args[4];
        List<String> problems = new ArrayList<>();

        if (partitions > 0) {
            Properties ap = new Properties();
            ap.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
            ap.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, 30_000);
            try (Admin admin = Admin.create(ap)) {
                admin.createTopics(Collections.singletonList(new NewTopic(topic, partitions, (short) 1)))
                        .all().get(30, TimeUnit.SECONDS);
                System.out.println("RESULT created=" + topic);
                if (!admin.listTopics().names().get(30, TimeUnit.SECONDS).contains(topic)) {
                    problems.add("listTopics does not show " + topic);
                }
            }
        }

        // ---- produce with default settings ------------------------------------------------------
        Properties pp = new Properties();
        pp.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        pp.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        pp.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        pp.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, 45_000);
        pp.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, 30_000);
        if (!"none".equals(compression)) {
            pp.put(ProducerConfig.COMPRESSION_TYPE_CONFIG, compression);
        }
        // partition -> offset -> record index
        Map<Integer, Map<Long, Integer>> acked = new HashMap<>();
        ConcurrentLinkedQueue<String> sendErrors = new ConcurrentLinkedQueue<>();
        try (KafkaProducer<String, String> producer = new KafkaProducer<>(pp)) {
            for (int i = 0; i < count; i++) {
                final int n = i;
                ProducerRecord<String, String> rec =
                        new ProducerRecord<>(topic, "key-" + (i % 101), value(i));
                rec.headers().add("seq", Integer.toString(i).getBytes(StandardCharsets.UTF_8));
                producer.send(rec, (md, err) -> {
                    if (err != null) {
                        sendErrors.add(n + ": " + err);
                    } else {
                        synchronized (acked) {
                            Map<Long, Integer> m = acked.computeIfAbsent(md.partition(), k -> new HashMap<>());
                            Integer prev = m.put(md.offset(), n);
                            if (prev != null) {
                                sendErrors.add("offset " + md.partition() + "/" + md.offset()
                                        + " acknowledged twice: records " + prev + " and " + n);
                            }
                        }
                    }
                });
            }
            producer.flush();
        }
        int ackedCount = acked.values().stream().mapToInt(Map::size).sum();
        System.out.println("RESULT produced=" + count + " acked=" + ackedCount + " send_errors=" + sendErrors.size());
        sendErrors.stream().limit(5).forEach(e -> problems.add("send error: " + e));
        if (ackedCount != count) {
            problems.add("acked " + ackedCount + " of " + count);
        }
        for (Map.Entry<Integer, Map<Long, Integer>> e : acked.entrySet()) {
            int n = e.getValue().size();
            for (long o = 0; o < n; o++) {
                if (!e.getValue().containsKey(o)) {
                    problems.add("partition " + e.getKey() + ": acknowledged offsets are not dense 0.." + (n - 1));
                    break;
                }
            }
        }

        // ---- consume with assign() + seekToBeginning() ------------------------------------------
        Properties cp = new Properties();
        cp.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        cp.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        cp.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        cp.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        cp.put(ConsumerConfig.CHECK_CRCS_CONFIG, "true");
        cp.put(ConsumerConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, 30_000);
        cp.put(ConsumerConfig.REQUEST_TIMEOUT_MS_CONFIG, 30_000);
        int consumed = 0;
        int duplicates = 0;
        int mismatches = 0;
        Map<Integer, Long> endOffsets = new HashMap<>();
        try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(cp)) {
            List<PartitionInfo> infos = consumer.partitionsFor(topic, Duration.ofSeconds(30));
            List<TopicPartition> tps = new ArrayList<>();
            for (PartitionInfo pi : infos) {
                tps.add(new TopicPartition(topic, pi.partition()));
            }
            System.out.println("RESULT partitions=" + tps.size());
            consumer.assign(tps);
            consumer.seekToBeginning(tps);
            Map<TopicPartition, Long> ends = consumer.endOffsets(tps, Duration.ofSeconds(30));
            Map<TopicPartition, Long> begins = consumer.beginningOffsets(tps, Duration.ofSeconds(30));
            long expectedTotal = 0;
            for (TopicPartition tp : tps) {
                long end = ends.get(tp);
                endOffsets.put(tp.partition(), end);
                expectedTotal += end - begins.get(tp);
                int ackedHere = acked.getOrDefault(tp.partition(), Collections.emptyMap()).size();
                if (end != ackedHere || begins.get(tp) != 0) {
                    problems.add("partition " + tp.partition() + ": offsets [" + begins.get(tp) + ", " + end
                            + ") but " + ackedHere + " records were acknowledged");
                }
            }
            Map<Integer, Long> nextExpected = new HashMap<>();
            long deadline = System.currentTimeMillis() + DEADLINE_MS;
            while (consumed < Math.max(expectedTotal, count) && System.currentTimeMillis() < deadline) {
                for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofMillis(500))) {
                    consumed++;
                    long want = nextExpected.getOrDefault(r.partition(), 0L);
                    if (r.offset() < want) {
                        duplicates++;
                    } else if (r.offset() > want) {
                        problems.add("partition " + r.partition() + ": gap, expected offset " + want + " got " + r.offset());
                    }
                    nextExpected.put(r.partition(), r.offset() + 1);
                    Integer n = acked.getOrDefault(r.partition(), Collections.emptyMap()).get(r.offset());
                    Header seq = r.headers().lastHeader("seq");
                    if (n == null || seq == null
                            || !Integer.toString(n).equals(new String(seq.value(), StandardCharsets.UTF_8))
                            || !value(n).equals(r.value()) || !("key-" + (n % 101)).equals(r.key())) {
                        if (mismatches++ < 5) {
                            problems.add("mismatch at " + r.partition() + "/" + r.offset() + ": key=" + r.key()
                                    + " value=" + abbreviate(r.value()) + " expected record " + n);
                        }
                    }
                }
            }
        }
        System.out.println("RESULT consumed=" + consumed + " duplicates=" + duplicates + " mismatches=" + mismatches
                + " end_offsets=" + endOffsets);
        if (consumed != count) {
            problems.add("consumed " + consumed + " records, expected " + count);
        }
        if (duplicates > 0) {
            problems.add(duplicates + " duplicate records consumed");
        }
        for (String p : problems) {
            System.out.println("PROBLEM " + p);
        }
        System.out.println(problems.isEmpty() ? "RESULT ok" : "RESULT failed problems=" + problems.size());
        System.exit(problems.isEmpty() ? 0 : 1);
    }

    private static String value(int i) {
        StringBuilder sb = new StringBuilder("java-value-").append(i).append('-');
        for (int k = 0; k < i % 50; k++) {
            sb.append((char) ('a' + (k % 26)));
        }
        return sb.toString();
    }

    private static String abbreviate(String s) {
        return s == null ? "null" : (s.length() > 40 ? s.substring(0, 40) + "..." : s);
    }
}
