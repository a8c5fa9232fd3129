#include "metadata.h"

#include <gtest/gtest.h>

namespace dtx::internal {
namespace {

TEST(MetadataTest, KeysAreLowerCased) {
  std::string key = "X-Request-ID";
  ASSERT_TRUE(NormalizeMetadataKey(&key).ok());
  EXPECT_EQ(key, "x-request-id");
  key = "dtm-trans_type";
  EXPECT_TRUE(NormalizeMetadataKey(&key).ok());
  key = "a.b_c-9";
  EXPECT_TRUE(NormalizeMetadataKey(&key).ok());
}

TEST(MetadataTest, BadKeysAreRejected) {
  for (std::string key : {"", "has space", "colon:", ":authority", "tab\t",
                          "caf\xc3\xa9", "slash/", "grpc-timeout"}) {
    std::string k = key;
    EXPECT_EQ(NormalizeMetadataKey(&k).code(), StatusCode::kInvalidArgument)
        << "'" << key << "'";
  }
}

TEST(MetadataTest, ValuesMustBePrintableAsciiUnlessBinary) {
  EXPECT_TRUE(CheckMetadataValue("x-a", "").ok());
  EXPECT_TRUE(CheckMetadataValue("x-a", "printable ~ text!").ok());
  EXPECT_FALSE(CheckMetadataValue("x-a", "new\nline").ok());
  EXPECT_FALSE(CheckMetadataValue("x-a", "caf\xc3\xa9").ok());
  EXPECT_FALSE(CheckMetadataValue("x-a", std::string("nul\0", 4)).ok());
  EXPECT_FALSE(CheckMetadataValue("x-a", "del\x7f").ok());
  EXPECT_TRUE(CheckMetadataValue("x-a-bin", std::string("\0\xff\n", 3)).ok());
}

}  // namespace
}  // namespace dtx::internal
