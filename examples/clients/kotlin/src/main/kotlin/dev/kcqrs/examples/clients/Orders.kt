package dev.kcqrs.examples.clients

import com.fasterxml.jackson.annotation.JsonIgnoreProperties

// Command data class: the article's own. On the wire it travels with the
// command type and its id (see OrdersClient.kt).
data class CreateOrderCommand(val orderId: String, val product: String, val quantity: Int)

// Event data class: read from orders.events, {"type":"OrderCreated", ...fields}.
@JsonIgnoreProperties(ignoreUnknown = true)
data class OrderCreatedEvent(val orderId: String, val product: String, val quantity: Int)

// The read model the orders projection keeps in the store `orders`.
@JsonIgnoreProperties(ignoreUnknown = true)
data class OrderReadModel(val orderId: String, val product: String, val quantity: Int, val status: String)

// A rejection, as kcqrs writes it to orders.rejections.
@JsonIgnoreProperties(ignoreUnknown = true)
data class CommandRejected(val commandId: String, val code: String, val reason: String)
