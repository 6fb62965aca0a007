// Sends two CreateOrder commands to the orders example (examples/orders/topology.yaml)
// with the Kafka Java client, one accepted and one rejected (quantity 0), follows
// their outcomes on orders.events and orders.rejections by commandId, and reads the
// read model back over HTTP with read-your-writes. Exits 1 saying what was not seen.
//
// Environment: KCQRS_BOOTSTRAP (default localhost:9092), KCQRS_HTTP (default
// http://127.0.0.1:8080), KCQRS_CLIENT_TIMEOUT_MS (default 30000).
package dev.kcqrs.examples.clients

import com.fasterxml.jackson.module.kotlin.convertValue
import com.fasterxml.jackson.module.kotlin.jacksonObjectMapper
import com.fasterxml.jackson.module.kotlin.readValue
import java.net.URI
import java.net.URLEncoder
import java.net.http.HttpClient
import java.net.http.HttpRequest
import java.net.http.HttpResponse
import java.time.Duration
import java.util.Base64
import java.util.Properties
import java.util.UUID
import kotlin.system.exitProcess
import org.apache.kafka.clients.consumer.ConsumerConfig
import org.apache.kafka.clients.consumer.KafkaConsumer
import org.apache.kafka.clients.producer.KafkaProducer
import org.apache.kafka.clients.producer.ProducerConfig
import org.apache.kafka.clients.producer.ProducerRecord
import org.apache.kafka.clients.producer.RecordMetadata
import org.apache.kafka.common.TopicPartition
import org.apache.kafka.common.serialization.StringDeserializer
import org.apache.kafka.common.serialization.StringSerializer

private const val COMMANDS = "orders.commands"
private const val EVENTS = "orders.events"
private const val REJECTIONS = "orders.rejections"
private val json = jacksonObjectMapper()

private class Failure(message: String) : Exception(message)

private fun env(name: String, default: String) = System.getenv(name)?.takeIf { it.isNotEmpty() } ?: default

fun main() {
    try {
        run()
        println("kotlin client: OK")
    } catch (f: Failure) {
        System.err.println("kotlin client: FAILED: ${f.message}")
        exitProcess(1)
    } catch (e: Exception) {
        System.err.println("kotlin client: FAILED: $e")
        exitProcess(1)
    }
}

private fun run() {
    val bootstrap = env("KCQRS_BOOTSTRAP", "localhost:9092")
    val http = env("KCQRS_HTTP", "http://127.0.0.1:8080")
    val timeoutMs = env("KCQRS_CLIENT_TIMEOUT_MS", "30000").toLong()
    val run = UUID.randomUUID().toString().take(8)

    // The article's command, and one the aggregate refuses: quantity must be > 0.
    val accepted = CreateOrderCommand("kotlin-$run-1", "gadget", 2)
    val rejected = CreateOrderCommand("kotlin-$run-2", "gadget", 0)
    val acceptedId = "kotlin-$run-c1"
    val rejectedId = "kotlin-$run-c2"

    outcomeConsumer(bootstrap).use { outcomes ->
        producer(bootstrap).use { producer ->
            val acceptedAt = producer.sendCommand(accepted, acceptedId)
            val rejectedAt = producer.sendCommand(rejected, rejectedId)
            println("sent $acceptedId to ${acceptedAt.topic()}-${acceptedAt.partition()}@${acceptedAt.offset()}, " +
                "$rejectedId to ${rejectedAt.topic()}-${rejectedAt.partition()}@${rejectedAt.offset()}")

            // Follow the outcomes: an event or a rejection names the command that caused it.
            var created: OrderCreatedEvent? = null
            var rejection: CommandRejected? = null
            val deadline = System.currentTimeMillis() + timeoutMs
            while ((created == null || rejection == null) && System.currentTimeMillis() < deadline) {
                for (r in outcomes.poll(Duration.ofMillis(200))) {
                    if (r.topic() == EVENTS) {
                        val commandId = r.headers().lastHeader("kcqrs.command.id")?.value()?.toString(Charsets.UTF_8)
                        when (commandId) {
                            rejectedId -> throw Failure("command $rejectedId (quantity 0) was accepted: ${r.value()}")
                            acceptedId -> created = json.readValue<OrderCreatedEvent>(r.value())
                                .also { println("event:     $it for $commandId") }
                        }
                    } else {
                        val outcome = json.readValue<CommandRejected>(r.value())
                        when (outcome.commandId) {
                            acceptedId -> throw Failure("command $acceptedId was rejected: ${r.value()}")
                            rejectedId -> rejection = outcome.also { println("rejection: $it") }
                        }
                    }
                }
            }
            val event = created
                ?: throw Failure("no OrderCreated event for command $acceptedId on $EVENTS within $timeoutMs ms")
            val refusal = rejection
                ?: throw Failure("no rejection for command $rejectedId on $REJECTIONS within $timeoutMs ms")
            val expected = OrderCreatedEvent(accepted.orderId, accepted.product, accepted.quantity)
            if (event != expected) throw Failure("event $event does not match the command ($expected)")
            if (refusal.code != "invalid") throw Failure("rejection code is ${refusal.code}, expected invalid")

            // Read-your-writes: the query waits until the store has applied the command.
            val client = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build()
            val view = client.getOrder(http, accepted.orderId, acceptedAt.positionToken())
            if (view.statusCode() != 200) {
                throw Failure("GET /stores/orders/keys/${accepted.orderId} answered ${view.statusCode()}: ${view.body()}")
            }
            val model = json.readValue<OrderReadModel>(view.body())
            println("view:      $model")
            val wanted = OrderReadModel(accepted.orderId, accepted.product, accepted.quantity, "CREATED")
            if (model != wanted) throw Failure("the view $model does not match the accepted command ($wanted)")
            val none = client.getOrder(http, rejected.orderId, rejectedAt.positionToken())
            if (none.statusCode() != 404) {
                throw Failure("the rejected order ${rejected.orderId} answered ${none.statusCode()} (expected 404): ${none.body()}")
            }
            println("view:      ${rejected.orderId} not found, as it was rejected")
        }
    }
}

// Idempotent: a retry after a lost acknowledgement is not written twice. The default
// partitioner hashes the key (the orderId) with murmur2, as kcqrs expects.
private fun producer(bootstrap: String) = KafkaProducer<String, String>(Properties().apply {
    put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap)
    put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, true)
    put(ProducerConfig.ACKS_CONFIG, "all")
    put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer::class.java.name)
    put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer::class.java.name)
})

// Committed events and rejections only (kcqrs writes them in transactions), from
// the end of each partition as it is before the commands are sent.
private fun outcomeConsumer(bootstrap: String): KafkaConsumer<String, String> {
    val consumer = KafkaConsumer<String, String>(Properties().apply {
        put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap)
        put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed")
        put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false)
        put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer::class.java.name)
        put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer::class.java.name)
    })
    val partitions = listOf(EVENTS, REJECTIONS).flatMap { topic ->
        val infos = consumer.partitionsFor(topic, Duration.ofSeconds(10)).orEmpty()
        if (infos.isEmpty()) {
            consumer.close()
            throw Failure("no topic $topic at $bootstrap: is kcqrs running examples/orders/topology.yaml there?")
        }
        infos.map { TopicPartition(it.topic(), it.partition()) }
    }
    consumer.assign(partitions)
    consumer.seekToEnd(partitions)
    // seekToEnd is lazy: fix the positions now, before the commands exist.
    partitions.forEach { consumer.position(it, Duration.ofSeconds(10)) }
    return consumer
}

// Keyed by the aggregate id: every command of one order lands on one partition.
private fun KafkaProducer<String, String>.sendCommand(command: CreateOrderCommand, commandId: String): RecordMetadata {
    val value = json.convertValue<Map<String, Any>>(command) + mapOf("type" to "CreateOrder", "commandId" to commandId)
    return send(ProducerRecord(COMMANDS, command.orderId, json.writeValueAsString(value))).get()
}

// The position of a command, as POST /commands answers it: base64url, unpadded, of
// {"t": topic, "p": partition, "o": offset} (docs/http-api.md, "Read-your-writes").
private fun RecordMetadata.positionToken(): String =
    Base64.getUrlEncoder().withoutPadding().encodeToString(
        json.writeValueAsBytes(mapOf("t" to topic(), "p" to partition(), "o" to offset())))

private fun HttpClient.getOrder(http: String, orderId: String, position: String): HttpResponse<String> {
    val uri = URI.create("$http/stores/orders/keys/${URLEncoder.encode(orderId, Charsets.UTF_8)}?position=$position")
    return send(HttpRequest.newBuilder(uri).timeout(Duration.ofSeconds(15)).GET().build(),
        HttpResponse.BodyHandlers.ofString())
}
