// UTF-8 decoding and the \p{L} / \p{N} / \s classes behind GPT-2's pre-tokeniser.
#include "data/tokenizers/unicode.h"

#include <gtest/gtest.h>

namespace attnlab::unicode {
namespace {

TEST(Unicode, DecodesValidUtf8) {
  const std::string text = "a\xC3\xA9\xE2\x80\x94\xF0\x9F\x8E\x89";  // a é — 🎉
  Decoded d = decode_utf8(text, 0);
  EXPECT_EQ(d.code_point, 'a');
  EXPECT_EQ(d.length, 1u);
  d = decode_utf8(text, 1);
  EXPECT_EQ(d.code_point, 0xE9u);
  EXPECT_EQ(d.length, 2u);
  d = decode_utf8(text, 3);
  EXPECT_EQ(d.code_point, 0x2014u);
  EXPECT_EQ(d.length, 3u);
  d = decode_utf8(text, 6);
  EXPECT_EQ(d.code_point, 0x1F389u);
  EXPECT_EQ(d.length, 4u);
}

TEST(Unicode, InvalidBytesDecodeOneAtATime) {
  for (const std::string bad : {std::string("\x80"), std::string("\xC3"), std::string("\xC0\xAF"),
                                std::string("\xED\xA0\x80"), std::string("\xF4\x90\x80\x80"),
                                std::string("\xE2\x28\xA1")}) {
    const Decoded d = decode_utf8(bad, 0);
    EXPECT_EQ(d.code_point, kInvalid) << "bytes of length " << bad.size();
    EXPECT_EQ(d.length, 1u);
  }
}

TEST(Unicode, CategoriesOfKnownCharacters) {
  // Letters (L*): Latin, accented, sharp s, Greek, Cyrillic, CJK, kana, Hangul, modifier letter.
  for (uint32_t cp :
       {0x41u, 0x7Au, 0xE9u, 0xDFu, 0x3A9u, 0x416u, 0x65E5u, 0x3042u, 0x30C6u, 0xAC00u, 0x2B0u}) {
    EXPECT_TRUE(is_letter(cp)) << std::hex << cp;
    EXPECT_FALSE(is_number(cp)) << std::hex << cp;
  }
  // Numbers (N*): ASCII, Arabic-Indic (Nd), Roman numeral (Nl), vulgar fraction and
  // superscript two (No).
  for (uint32_t cp : {0x30u, 0x39u, 0x663u, 0x216Bu, 0xBDu, 0xB2u}) {
    EXPECT_TRUE(is_number(cp)) << std::hex << cp;
    EXPECT_FALSE(is_letter(cp)) << std::hex << cp;
  }
  // Neither: punctuation, symbols, emoji, combining accent (Mn), spaces.
  for (uint32_t cp : {0x21u, 0x2014u, 0x201Cu, 0x20ACu, 0x1F389u, 0x301u, 0x20u, 0x3000u}) {
    EXPECT_FALSE(is_letter(cp)) << std::hex << cp;
    EXPECT_FALSE(is_number(cp)) << std::hex << cp;
  }
  for (uint32_t cp : {0x9u, 0xAu, 0xDu, 0x20u, 0x85u, 0xA0u, 0x2003u, 0x3000u})
    EXPECT_TRUE(is_whitespace(cp)) << std::hex << cp;
  for (uint32_t cp : {0x41u, 0x200Bu, 0xFEFFu, 0x2014u}) EXPECT_FALSE(is_whitespace(cp));
}

TEST(Unicode, TablesAreSortedAndDisjoint) {
  for (auto [ranges, count] : {std::pair{detail::kLetterRanges, detail::kLetterRangesCount},
                               std::pair{detail::kNumberRanges, detail::kNumberRangesCount}}) {
    ASSERT_GT(count, 100u);
    for (size_t i = 0; i < count; ++i) {
      EXPECT_LE(ranges[i].lo, ranges[i].hi);
      if (i > 0) EXPECT_GT(ranges[i].lo, ranges[i - 1].hi + 1);  // merged, so gaps >= 1
    }
  }
}

}  // namespace
}  // namespace attnlab::unicode
