// Issue 12's money cases end to end: examples/bank on the real broker,
// commands through POST /commands?wait=true, reads through GET /stores,
// then a restart from the same state directory. What a user would notice:
// 0.10 + 0.20 - 0.30 closes an account, amounts come back with the digits
// they were sent with, a wrong amount is a rejection with a code (409), not
// a dead letter (422), and nothing changes across a restart.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "json/document.h"
#include "tests/integration/engine_test_util.h"
#include "tests/support/examples.h"
#include "tests/support/http_client.h"
#include "tests/support/test_kafka.h"

namespace kcqrs {
namespace {

using json = kcqrs::Json;
using namespace kcqrs::testing;

constexpr char kToken[] = "bank-token";

EngineOptions LoadBank(const std::string& unique, const std::string& bootstrap,
                       const std::string& state_dir) {
  EngineOptions options = LoadExample(
      "bank", {"application.id=" + unique, "application.state_dir=" + state_dir,
               "kafka.bootstrap_servers=" + bootstrap, "http.listen=127.0.0.1:0",
               "aggregates.account.command_topics=[" + unique + ".commands]",
               "aggregates.account.event_topic=" + unique + ".events",
               "aggregates.account.rejection_topic=" + unique + ".rejections",
               "projections.balances.event_topics=[" + unique + ".events]"});
  options.http.command_token = kToken;
  return options;
}

class BankMoneyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    bootstrap_ = TestBootstrapServers();
    unique_ = UniqueName("bank-money");
    state_dir_ = (std::filesystem::temp_directory_path() / ("kcqrs-" + unique_)).string();
    std::filesystem::remove_all(state_dir_);
    Start();
  }
  void TearDown() override {
    if (engine_) engine_->Stop();
    engine_.reset();
    std::filesystem::remove_all(state_dir_);
  }
  void Start() {
    engine_ = OpenEngine(LoadBank(unique_, bootstrap_, state_dir_));
    ASSERT_NE(engine_, nullptr);
    ASSERT_TRUE(WaitFor([&] { return engine_->ready(); }, std::chrono::seconds(90)));
  }

  // POST /commands/account?wait=true with this body text, as sent.
  HttpResult Send(const std::string& account, const std::string& fields) {
    const std::string body = R"({"accountId":")" + account + R"(","commandId":")" + unique_ +
                             "-" + std::to_string(++n_) + "\"," + fields + "}";
    HttpResult r = HttpRequest(engine_->http_address(), "POST", "/commands/account?wait=true",
                               body, {{"Authorization", std::string("Bearer ") + kToken}});
    json answer = json::parse(r.body, nullptr, false);
    if (answer.is_object() && answer.contains("position")) position_ = answer["position"];
    return r;
  }
  // The view, read after the last command (read-your-writes through the
  // projection: ?position=).
  std::string Balance(const std::string& account) {
    HttpResult r = HttpRequest(engine_->http_address(), "GET",
                               "/stores/balances/keys/" + account + "?position=" + position_);
    EXPECT_EQ(r.status, 200) << r.body;
    return r.body;
  }

  std::string bootstrap_, unique_, state_dir_;
  std::unique_ptr<Engine> engine_;
  int n_ = 0;
  std::string position_;
};

TEST_F(BankMoneyTest, DecimalsAreExactRejectionsHaveCodesAndARestartChangesNothing) {
  ASSERT_EQ(Send("a-1", R"("type":"OpenAccount","owner":"ada")").status, 200);
  HttpResult d1 = Send("a-1", R"("type":"Deposit","amount":0.10)");
  ASSERT_EQ(d1.status, 200) << d1.body;
  // The event carries the amount as it was sent: 0.10, not 0.1.
  EXPECT_NE(d1.body.find(R"("amount":0.10)"), std::string::npos) << d1.body;
  ASSERT_EQ(Send("a-1", R"("type":"Deposit","amount":0.20)").status, 200);
  ASSERT_EQ(Send("a-1", R"("type":"Withdraw","amount":0.30)").status, 200);
  HttpResult closed = Send("a-1", R"("type":"CloseAccount")");
  EXPECT_EQ(closed.status, 200) << "0.10 + 0.20 - 0.30 must be exactly zero: " << closed.body;
  EXPECT_EQ(Balance("a-1"), R"({"accountId":"a-1","balance":0.00,"closed":true,"owner":"ada"})");

  ASSERT_EQ(Send("a-2", R"("type":"OpenAccount","owner":"bob","overdraftLimit":50.5)").status,
            200);
  // Wrong amounts: rejections with a code (409), never dead letters (422).
  HttpResult text_amount = Send("a-2", R"("type":"Deposit","amount":"12.50")");
  EXPECT_EQ(text_amount.status, 409) << text_amount.body;
  EXPECT_EQ(json::parse(text_amount.body)["code"], "invalid_amount") << text_amount.body;
  HttpResult sub_cent = Send("a-2", R"("type":"Deposit","amount":10.005)");
  EXPECT_EQ(sub_cent.status, 409) << sub_cent.body;
  EXPECT_EQ(json::parse(sub_cent.body)["code"], "invalid_amount");
  HttpResult huge = Send("a-2", R"("type":"Deposit","amount":99999999999999999999)");
  EXPECT_EQ(huge.status, 409) << huge.body;
  EXPECT_EQ(json::parse(huge.body)["code"], "out_of_range");
  EXPECT_NE(huge.body.find("found 99999999999999999999"), std::string::npos) << huge.body;

  ASSERT_EQ(Send("a-2", R"("type":"Deposit","amount":1000000.00)").status, 200);
  ASSERT_EQ(Send("a-2", R"("type":"Deposit","amount":19.99)").status, 200);
  HttpResult interest = Send("a-2", R"("type":"PayInterest","ratePercent":1.5)");
  ASSERT_EQ(interest.status, 200) << interest.body;
  // 1000019.99 * 1.5 / 100 = 15000.29985, to cents half-even, in Lua.
  EXPECT_NE(interest.body.find(R"("amount":15000.30)"), std::string::npos) << interest.body;
  ASSERT_EQ(Send("a-2", R"("type":"Withdraw","amount":1000000.00)").status, 200);
  // Down to -50.50, exactly the overdraft limit of 50.5; a cent more is refused.
  ASSERT_EQ(Send("a-2", R"("type":"Withdraw","amount":15070.79)").status, 200);
  HttpResult past = Send("a-2", R"("type":"Withdraw","amount":0.01)");
  EXPECT_EQ(past.status, 409) << past.body;
  EXPECT_EQ(json::parse(past.body)["code"], "insufficient_funds");
  const std::string before = Balance("a-2");
  EXPECT_EQ(before, R"({"accountId":"a-2","balance":-50.50,"owner":"bob"})");

  // A restart reads the stores and the aggregate back with their digits.
  engine_->Stop();
  engine_.reset();
  Start();
  EXPECT_EQ(Balance("a-2"), before);
  HttpResult after = Send("a-2", R"("type":"Deposit","amount":50.50)");
  ASSERT_EQ(after.status, 200) << after.body;
  EXPECT_EQ(Balance("a-2"), R"({"accountId":"a-2","balance":0.00,"owner":"bob"})");
  EXPECT_EQ(Send("a-2", R"("type":"CloseAccount")").status, 200);
}

}  // namespace
}  // namespace kcqrs
