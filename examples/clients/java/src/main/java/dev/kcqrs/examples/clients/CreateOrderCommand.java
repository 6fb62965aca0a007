package dev.kcqrs.examples.clients;

import com.fasterxml.jackson.annotation.JsonProperty;

// Command class representing a user action: the article's own, with the two
// fields kcqrs reads besides the article's three, the command type and its id.
public class CreateOrderCommand {
  private final String orderId;
  private final String product;
  private final int quantity;

  public CreateOrderCommand(String orderId, String product, int quantity) {
    this.orderId = orderId;
    this.product = product;
    this.quantity = quantity;
  }

  // The command type the orders aggregate decides on (its `type_field`).
  @JsonProperty("type")
  public String getType() {
    return "CreateOrder";
  }

  public String getOrderId() {
    return orderId;
  }

  public String getProduct() {
    return product;
  }

  public int getQuantity() {
    return quantity;
  }
}
