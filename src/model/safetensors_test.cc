#include "model/safetensors.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <filesystem>

#include "core/file_util.h"

namespace sc {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

class Safetensors : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           fmt::format("sc_safetensors_{}_{}", ::getpid(),
                       ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  // A file with the given header text (padded to 8 bytes unless told not to)
  // and data bytes; `header_len` overrides the length field.
  std::string write_raw(const std::string& name, std::string header, const std::string& data,
                        std::optional<uint64_t> header_len = std::nullopt) {
    header.append((8 - header.size() % 8) % 8, ' ');
    uint64_t n = header_len.value_or(header.size());
    std::string bytes(reinterpret_cast<const char*>(&n), 8);
    bytes += header;
    bytes += data;
    std::string p = path(name);
    EXPECT_TRUE(write_file_atomic(p, bytes).ok());
    return p;
  }

  // The error of opening a file that must fail, checking it names the file.
  std::string open_error(const std::string& p) {
    Result<SafetensorsFile> file = SafetensorsFile::open(p);
    EXPECT_FALSE(file.ok()) << p << " opened but should not have";
    if (file.ok()) return "";
    EXPECT_THAT(file.status().message(), HasSubstr(p));
    return file.status().message();
  }

  fs::path dir_;
};

// 2 F32 + 1 U32 tensor: 24 + 8 = 32 data bytes.
const std::string kGoodHeader =
    R"({"__metadata__":{"lr":"0.01"},"a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},)"
    R"("b":{"dtype":"U32","shape":[2],"data_offsets":[24,32]}})";
const std::string kGoodData(32, '\0');

TEST_F(Safetensors, RoundTripAllDtypesShapesAndMetadata) {
  const std::vector<float> a = {1.5f, -2.0f, 3.25f, 0.0f, 1e-30f, -7.0f};
  const std::vector<uint16_t> b = {f32_to_bf16(1.0f), f32_to_bf16(-0.5f), f32_to_bf16(3.0f)};
  const std::vector<uint32_t> tokens = {0, 7, 0xFFFFFFFFu};
  const std::vector<int64_t> i64 = {-1, 1LL << 40};
  const std::vector<double> f64 = {0.1, -0.2, 1e300, 4.0};
  const std::vector<int32_t> i32 = {-5};
  const uint8_t u8[] = {1, 2, 3};
  const float scalar = 42.0f;
  std::vector<TensorToWrite> tensors = {
      {"bf16", DType::kBF16, {3}, b.data()},        {"a", DType::kF32, {2, 3}, a.data()},
      {"tokens", DType::kU32, {1, 3}, tokens.data()}, {"i64", DType::kI64, {2}, i64.data()},
      {"f64", DType::kF64, {2, 2}, f64.data()},     {"i32", DType::kI32, {1}, i32.data()},
      {"u8", DType::kU8, {3}, u8},                  {"scalar", DType::kF32, {}, &scalar},
      {"empty", DType::kF32, {0, 4}, nullptr},
  };
  std::map<std::string, std::string> metadata = {{"lr", "0.01"}, {"note", "héllo \"quoted\""}};
  const std::string p = path("round_trip.safetensors");
  ASSERT_TRUE(write_safetensors(p, tensors, metadata).ok());

  Result<SafetensorsFile> file = SafetensorsFile::open(p);
  ASSERT_TRUE(file.ok()) << file.status().message();
  EXPECT_EQ(file->metadata(), metadata);
  EXPECT_EQ(file->tensors().size(), tensors.size());
  for (const TensorToWrite& t : tensors) {
    const TensorView* v = file->find(t.name);
    ASSERT_NE(v, nullptr) << t.name;
    EXPECT_EQ(v->dtype, t.dtype) << t.name;
    EXPECT_EQ(v->shape, t.shape) << t.name;
    size_t bytes = static_cast<size_t>(element_count(t.shape)) * dtype_size_bytes(t.dtype);
    ASSERT_EQ(v->size_bytes, bytes) << t.name;
    if (bytes > 0) {
      EXPECT_EQ(std::memcmp(v->data, t.data, bytes), 0) << t.name;
    }
    // Largest elements first and an 8-byte padded header: every tensor aligned.
    EXPECT_EQ(reinterpret_cast<uintptr_t>(v->data) % dtype_size_bytes(t.dtype), 0u) << t.name;
  }

  // The header is padded with spaces so the data starts on an 8-byte boundary.
  Result<std::string> raw = read_file(p);
  ASSERT_TRUE(raw.ok());
  uint64_t n = 0;
  std::memcpy(&n, raw->data(), 8);
  EXPECT_EQ(n % 8, 0u);
  EXPECT_EQ(raw->at(8), '{');
  EXPECT_EQ(raw->size(), 8 + n + 24 + 6 + 12 + 16 + 32 + 4 + 3 + 4);

  Result<std::vector<float>> as_f32 = file->read_f32("a", {2, 3});
  ASSERT_TRUE(as_f32.ok());
  EXPECT_EQ(*as_f32, a);
  Result<std::vector<float>> from_f64 = file->read_f32("f64");
  ASSERT_TRUE(from_f64.ok());
  EXPECT_EQ((*from_f64)[0], 0.1f);
  EXPECT_TRUE(std::isinf((*from_f64)[2]));
  Result<std::vector<uint32_t>> as_u32 = file->read_u32("tokens");
  ASSERT_TRUE(as_u32.ok());
  EXPECT_EQ(*as_u32, tokens);
  Result<std::vector<float>> empty = file->read_f32("empty");
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty());
  Result<double> lr = file->metadata_double("lr");
  ASSERT_TRUE(lr.ok());
  EXPECT_EQ(*lr, 0.01);
}

TEST_F(Safetensors, ReadsAFileWrittenByHand) {
  // As Hugging Face writes it: offsets relative to the data start, tensors in
  // any header order.
  float values[6] = {1, 2, 3, 4, 5, 6};
  uint32_t ids[2] = {9, 10};
  std::string data(reinterpret_cast<const char*>(values), 24);
  data.append(reinterpret_cast<const char*>(ids), 8);
  std::string header =
      R"({"b":{"dtype":"U32","shape":[2],"data_offsets":[24,32]},)"
      R"("a":{"shape":[2,3],"dtype":"F32","data_offsets":[0,24]}})";
  Result<SafetensorsFile> file = SafetensorsFile::open(write_raw("hand.safetensors", header, data));
  ASSERT_TRUE(file.ok()) << file.status().message();
  ASSERT_EQ(file->tensors().size(), 2u);
  EXPECT_EQ(file->tensors()[0].name, "a");  // offset order
  EXPECT_EQ(*file->read_f32("a"), std::vector<float>(values, values + 6));
  EXPECT_EQ(*file->read_u32("b"), std::vector<uint32_t>({9, 10}));
  EXPECT_TRUE(file->metadata().empty());
}

TEST_F(Safetensors, Bf16AndF16Conversion) {
  EXPECT_EQ(f32_to_bf16(1.0f), 0x3F80);
  EXPECT_EQ(f32_to_bf16(-2.0f), 0xC000);
  EXPECT_EQ(bf16_to_f32(0x3F80), 1.0f);
  EXPECT_EQ(bf16_to_f32(0x4049), 3.140625f);
  // Round to nearest, ties to even: 1 + 2^-8 is halfway between 1 and 1 + 2^-7.
  EXPECT_EQ(f32_to_bf16(1.0f + 0x1p-8f), 0x3F80);
  EXPECT_EQ(f32_to_bf16(1.0f + 0x1p-7f + 0x1p-8f), 0x3F82);
  EXPECT_EQ(f32_to_bf16(1.0f + 0x1p-8f + 0x1p-20f), 0x3F81);
  EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(std::nanf("")))));
  EXPECT_EQ(f32_to_bf16(INFINITY), 0x7F80);

  EXPECT_EQ(f16_to_f32(0x3C00), 1.0f);
  EXPECT_EQ(f16_to_f32(0x7BFF), 65504.0f);
  EXPECT_EQ(f16_to_f32(0x0001), 0x1p-24f);
  EXPECT_EQ(f16_to_f32(0xC000), -2.0f);
  EXPECT_TRUE(std::isinf(f16_to_f32(0x7C00)));
  EXPECT_EQ(f32_to_f16(65519.0f), 0x7BFF);
  EXPECT_EQ(f32_to_f16(65520.0f), 0x7C00);  // ties to even round up to infinity
  EXPECT_EQ(f32_to_f16(0x1p-25f), 0x0000);  // halfway to the smallest subnormal: even is 0
  EXPECT_EQ(f32_to_f16(0x1p-25f + 0x1p-30f), 0x0001);
  EXPECT_TRUE(std::isnan(f16_to_f32(f32_to_f16(std::nanf("")))));

  // Every non-NaN 16-bit pattern survives a trip through float32.
  for (uint32_t bits = 0; bits < 0x10000; ++bits) {
    uint16_t h = static_cast<uint16_t>(bits);
    if ((h & 0x7FFF) <= 0x7C00) {
      ASSERT_EQ(f32_to_f16(f16_to_f32(h)), h) << std::hex << bits;
    }
    if ((h & 0x7FFF) <= 0x7F80) {
      ASSERT_EQ(f32_to_bf16(bf16_to_f32(h)), h) << std::hex << bits;
    }
  }

  // Through a file: BF16 and F16 tensors read back as float32.
  std::vector<float> values = {1.0f, -0.3f, 1000.5f, 1e-3f, -65504.0f};
  std::vector<uint16_t> bf16, f16;
  for (float v : values) {
    bf16.push_back(f32_to_bf16(v));
    f16.push_back(f32_to_f16(v));
  }
  const std::string p = path("half.safetensors");
  std::vector<TensorToWrite> tensors = {{"bf16", DType::kBF16, {5}, bf16.data()},
                                        {"f16", DType::kF16, {5}, f16.data()}};
  ASSERT_TRUE(write_safetensors(p, tensors).ok());
  Result<SafetensorsFile> file = SafetensorsFile::open(p);
  ASSERT_TRUE(file.ok()) << file.status().message();
  std::vector<float> from_bf16 = *file->read_f32("bf16");
  std::vector<float> from_f16 = *file->read_f32("f16");
  for (size_t i = 0; i < values.size(); ++i) {
    EXPECT_NEAR(from_bf16[i], values[i], std::fabs(values[i]) * 0x1p-8f) << i;  // 8 significant bits
    EXPECT_NEAR(from_f16[i], values[i], std::fabs(values[i]) * 0x1p-11f) << i;  // 11 significant bits
  }
  EXPECT_EQ(from_bf16[0], 1.0f);
  EXPECT_EQ(from_bf16[1], bf16_to_f32(0xBE9A));  // -0.30078125, nearest bf16 to -0.3
}

TEST_F(Safetensors, GoodHandWrittenFileOpens) {
  // The base that the corruption cases below each break in one way.
  Result<SafetensorsFile> file = SafetensorsFile::open(write_raw("good.safetensors", kGoodHeader, kGoodData));
  ASSERT_TRUE(file.ok()) << file.status().message();
}

TEST_F(Safetensors, TruncatedFile) {
  std::string p = write_raw("truncated.safetensors", kGoodHeader, kGoodData.substr(0, 20));
  std::string error = open_error(p);
  EXPECT_THAT(error, HasSubstr("tensor 'a'"));
  EXPECT_THAT(error, HasSubstr("truncated"));

  EXPECT_THAT(open_error(write_raw("truncated_header.safetensors", kGoodHeader.substr(0, 40), "")),
              HasSubstr("not valid JSON"));

  std::string tiny = path("tiny.safetensors");
  ASSERT_TRUE(write_file_atomic(tiny, "abc").ok());
  EXPECT_THAT(open_error(tiny), HasSubstr("too short"));
  std::string empty_file = path("empty.safetensors");
  ASSERT_TRUE(write_file_atomic(empty_file, "").ok());
  EXPECT_THAT(open_error(empty_file), HasSubstr("too short"));
}

TEST_F(Safetensors, HeaderLengthLargerThanFile) {
  EXPECT_THAT(open_error(write_raw("long_header.safetensors", kGoodHeader, kGoodData, 4096)),
              HasSubstr("runs past the end of the file"));
  EXPECT_THAT(open_error(write_raw("huge_header.safetensors", kGoodHeader, kGoodData, 1ull << 62)),
              HasSubstr("over the 100000000 byte limit"));
}

TEST_F(Safetensors, BadJson) {
  EXPECT_THAT(open_error(write_raw("bad_json.safetensors", R"({"a":{"dtype":"F32",)", kGoodData)),
              HasSubstr("not valid JSON"));
  EXPECT_THAT(open_error(write_raw("not_object.safetensors", R"([1, 2])", "")), HasSubstr("does not start with '{'"));
  EXPECT_THAT(open_error(write_raw("zero_header.safetensors", "", "", 0)), HasSubstr("does not start with '{'"));
  EXPECT_THAT(
      open_error(write_raw("duplicate.safetensors",
                           R"({"a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},)"
                           R"("a":{"dtype":"F32","shape":[2],"data_offsets":[24,32]}})",
                           kGoodData)),
      HasSubstr("key 'a' twice"));
  EXPECT_THAT(open_error(write_raw("duplicate_field.safetensors",
                                   R"({"a":{"dtype":"F32","dtype":"F16","shape":[8],"data_offsets":[0,32]}})",
                                   kGoodData)),
              HasSubstr("key 'dtype' twice"));
  EXPECT_THAT(open_error(write_raw("bad_metadata.safetensors",
                                   R"({"__metadata__":{"lr":0.01},"a":{"dtype":"F32","shape":[8],)"
                                   R"("data_offsets":[0,32]}})",
                                   kGoodData)),
              HasSubstr("__metadata__ entry 'lr' is number 0.01, not a string"));
  EXPECT_THAT(open_error(write_raw("missing_shape.safetensors", R"({"a":{"dtype":"F32","data_offsets":[0,32]}})",
                                   kGoodData)),
              HasSubstr("tensor 'a': missing field 'shape'"));
  EXPECT_THAT(open_error(write_raw("negative_dim.safetensors",
                                   R"({"a":{"dtype":"F32","shape":[-8],"data_offsets":[0,32]}})", kGoodData)),
              HasSubstr("tensor 'a': shape entry number -8 is not a non-negative integer"));
  EXPECT_THAT(open_error(write_raw("extra_field.safetensors",
                                   R"({"a":{"dtype":"F32","shape":[8],"data_offsets":[0,32],"x":1}})", kGoodData)),
              HasSubstr("tensor 'a': unknown field 'x'"));
}

TEST_F(Safetensors, OffsetsOutOfRange) {
  EXPECT_THAT(open_error(write_raw("past_end.safetensors",
                                   R"({"a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},)"
                                   R"("b":{"dtype":"U32","shape":[2],"data_offsets":[32,40]}})",
                                   kGoodData)),
              HasSubstr("tensor 'b': data_offsets [32, 40] run past the end"));
  EXPECT_THAT(open_error(write_raw("reversed.safetensors", R"({"a":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}})",
                                   kGoodData)),
              HasSubstr("tensor 'a': data_offsets [8, 0] end before they begin"));
  EXPECT_THAT(open_error(write_raw("overlap.safetensors",
                                   R"({"a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},)"
                                   R"("b":{"dtype":"U32","shape":[4],"data_offsets":[16,32]}})",
                                   kGoodData)),
              HasSubstr("tensor 'b' data_offsets [16, 32] overlap tensor 'a' [0, 24]"));
  EXPECT_THAT(open_error(write_raw("hole.safetensors",
                                   R"({"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},)"
                                   R"("b":{"dtype":"U32","shape":[2],"data_offsets":[24,32]}})",
                                   kGoodData)),
              HasSubstr("bytes [16, 24) of the data region belong to no tensor (before tensor 'b')"));
  EXPECT_THAT(open_error(write_raw("tail.safetensors", kGoodHeader, kGoodData + "12345678")),
              HasSubstr("8 stray bytes at the end"));
  EXPECT_THAT(open_error(write_raw("bad_offsets.safetensors", R"({"a":{"dtype":"F32","shape":[8],"data_offsets":[0]}})",
                                   kGoodData)),
              HasSubstr("tensor 'a': field 'data_offsets' is an array of 1, not [begin, end]"));
}

TEST_F(Safetensors, WrongSizeForShape) {
  EXPECT_THAT(open_error(write_raw("wrong_size.safetensors",
                                   R"({"a":{"dtype":"F32","shape":[2,4],"data_offsets":[0,24]},)"
                                   R"("b":{"dtype":"U32","shape":[2],"data_offsets":[24,32]}})",
                                   kGoodData)),
              HasSubstr("tensor 'a': shape [2, 4] of F32 needs 32 bytes but data_offsets [0, 24] hold 24"));
  EXPECT_THAT(open_error(write_raw("overflow.safetensors",
                                   R"({"a":{"dtype":"F64","shape":[4294967296,4294967296],"data_offsets":[0,32]}})",
                                   kGoodData)),
              HasSubstr("more than 2^64"));
}

// Issue 15, item 1: a header whose shape is nested 200,000 deep crashed
// while the error message printed the shape entry.
TEST_F(Safetensors, DeeplyNestedHeaderIsRefusedNotACrash) {
  const size_t depth = 200000;
  const std::string nested = std::string(depth, '[') + std::string(depth, ']');
  EXPECT_EQ(open_error(write_raw("nested.safetensors",
                                 R"({"a":{"dtype":"F32","shape":)" + nested + R"(,"data_offsets":[0,32]}})", kGoodData)),
            path("nested.safetensors") + ": header nested more than 64 levels deep");
  // Within the bound, a wrong value is described by its type and size, not printed.
  const std::string shallow = std::string(40, '[') + std::string(40, ']');
  EXPECT_THAT(open_error(write_raw("shallow.safetensors",
                                   R"({"a":{"dtype":"F32","shape":[)" + shallow + R"(],"data_offsets":[0,32]}})",
                                   kGoodData)),
              HasSubstr("tensor 'a': shape entry an array of 1 is not a non-negative integer"));
  EXPECT_THAT(open_error(write_raw("nested_metadata.safetensors",
                                   R"({"__metadata__":{"m":)" + shallow + R"(},"a":{"dtype":"F32","shape":[8],)"
                                   R"("data_offsets":[0,32]}})",
                                   kGoodData)),
              HasSubstr("__metadata__ entry 'm' is an array of 1, not a string"));
}

TEST_F(Safetensors, ErrorsQuoteNamesAndShapesShort) {
  const std::string name(100000, 'n');
  const std::string error = open_error(write_raw(
      "long_name.safetensors", R"({")" + name + R"(":{"dtype":"F32","shape":[8],"data_offsets":[0,24]}})", kGoodData));
  EXPECT_LT(error.size(), 400u) << error.substr(0, 500);
  EXPECT_THAT(error, HasSubstr("tensor 'nnnn"));
  std::vector<int64_t> many_dims(100000, 1);
  EXPECT_EQ(shape_text(many_dims), "[1, 1, 1, 1, 1, 1, 1, 1, ... (100000 dimensions)]");
}

TEST_F(Safetensors, UnknownDtype) {
  EXPECT_THAT(open_error(write_raw("unknown_dtype.safetensors",
                                   R"({"a":{"dtype":"F8_E4M3","shape":[32],"data_offsets":[0,32]}})", kGoodData)),
              HasSubstr("tensor 'a': unknown dtype 'F8_E4M3'"));
}

TEST_F(Safetensors, LookupErrorsNameFileAndTensor) {
  std::string p = write_raw("good.safetensors", kGoodHeader, kGoodData);
  Result<SafetensorsFile> file = SafetensorsFile::open(p);
  ASSERT_TRUE(file.ok());
  Result<const TensorView*> missing = file->get("nope");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_THAT(missing.status().message(), HasSubstr(p + ": no tensor 'nope'"));
  EXPECT_THAT(file->read_f32("a", {3, 2}).status().message(),
              HasSubstr("tensor 'a' has shape [2, 3], expected [3, 2]"));
  EXPECT_THAT(file->read_f32("b").status().message(), HasSubstr("'b' has dtype U32, not a float type"));
  EXPECT_THAT(file->read_u32("a").status().message(), HasSubstr("'a' has dtype F32, not an integer type"));
  EXPECT_THAT(file->metadata_value("beta").status().message(), HasSubstr("no __metadata__ entry 'beta'"));
  Result<SafetensorsFile> absent = SafetensorsFile::open(path("absent.safetensors"));
  EXPECT_EQ(absent.status().code(), StatusCode::kNotFound);
}

TEST_F(Safetensors, FailedWriteKeepsThePreviousFile) {
  const std::string p = path("keep.safetensors");
  const float one = 1.0f;
  std::vector<TensorToWrite> good = {{"x", DType::kF32, {1}, &one}};
  ASSERT_TRUE(write_safetensors(p, good).ok());

  std::vector<TensorToWrite> twice = {{"x", DType::kF32, {1}, &one}, {"x", DType::kF32, {1}, &one}};
  Status s = write_safetensors(p, twice);
  EXPECT_FALSE(s.ok());
  EXPECT_THAT(s.message(), HasSubstr("tensor 'x' given twice"));
  std::vector<TensorToWrite> no_data = {{"y", DType::kF32, {3}, nullptr}};
  EXPECT_FALSE(write_safetensors(p, no_data).ok());
  std::vector<TensorToWrite> reserved = {{"__metadata__", DType::kF32, {1}, &one}};
  EXPECT_FALSE(write_safetensors(p, reserved).ok());

  Result<SafetensorsFile> file = SafetensorsFile::open(p);
  ASSERT_TRUE(file.ok()) << file.status().message();
  ASSERT_EQ(file->tensors().size(), 1u);
  EXPECT_EQ(*file->read_f32("x"), std::vector<float>({1.0f}));
  // No temporary file is left behind.
  int entries = 0;
  for (const auto& e : fs::directory_iterator(dir_)) entries += e.is_regular_file();
  EXPECT_EQ(entries, 1);

  Status no_dir = write_safetensors(path("missing_dir/x.safetensors"), good);
  EXPECT_EQ(no_dir.code(), StatusCode::kIOError);
}

}  // namespace
}  // namespace sc
