#define BOOST_TEST_MODULE size_classes
#include <boost/test/unit_test.hpp>

#include <chainalloc/size_classes.hpp>

#include <cstdint>
#include <vector>

using chainalloc::SizeClasses;

namespace {

constexpr int kNone = SizeClasses::kNone;

const std::vector<std::uint32_t> kDefaultSizes = {
    16,    32,    48,    64,    80,    96,    112,   128,                              //
    160,   192,   224,   256,   320,   384,   448,   512,   640,   768,   896,   1024,  //
    1280,  1536,  1792,  2048,  2560,  3072,  3584,  4096,  5120,  6144,  7168,  8192,  //
    10240, 12288, 14336, 16384, 20480, 24576, 28672, 32768};

// The reference answer: a linear scan, obviously right.
int brute_class(const SizeClasses& t, std::size_t n, std::size_t align = 1) {
    for (std::size_t i = 0; i < t.count(); ++i)
        if (t.size_of(i) >= n && t.size_of(i) % align == 0) return static_cast<int>(i);
    return kNone;
}

SizeClasses make(const std::vector<std::uint32_t>& sizes) {
    SizeClasses t;
    BOOST_REQUIRE(t.assign(sizes));
    return t;
}

}  // namespace

BOOST_AUTO_TEST_CASE(defaults_are_the_forty_documented_classes) {
    SizeClasses t = SizeClasses::defaults();
    BOOST_REQUIRE(t.count() == 40u);
    for (std::size_t i = 0; i < 40; ++i) BOOST_TEST(t.size_of(i) == kDefaultSizes[i], "class " << i);
    BOOST_TEST(t.max_size() == 32768u);
}

BOOST_AUTO_TEST_CASE(defaults_waste_under_a_quarter) {
    SizeClasses t = SizeClasses::defaults();
    for (std::size_t n = 129; n <= 32768; ++n) {
        std::size_t s = t.size_of(static_cast<std::size_t>(t.class_of(n)));
        if (s - n >= n / 4 + 16) BOOST_FAIL("request " << n << " gets class " << s);
    }
}

BOOST_AUTO_TEST_CASE(class_of_at_every_boundary) {
    SizeClasses t = SizeClasses::defaults();
    struct Case {
        std::size_t n;
        int cls;
    };
    for (Case c : {Case{0, 0}, Case{1, 0}, Case{15, 0}, Case{16, 0}, Case{17, 1}, Case{32, 1},
                   Case{33, 2}, Case{127, 7}, Case{128, 7}, Case{129, 8}, Case{160, 8},
                   Case{161, 9}, Case{4095, 27}, Case{4096, 27}, Case{4097, 28}, Case{5120, 28},
                   Case{5121, 29}, Case{32767, 39}, Case{32768, 39}, Case{32769, kNone},
                   Case{std::size_t{1} << 20, kNone}, Case{SIZE_MAX, kNone},
                   Case{SIZE_MAX - 15, kNone}})
        BOOST_TEST(t.class_of(c.n) == c.cls, "class_of(" << c.n << ")");
}

// Both paths (byte table up to 4096, binary search above) against the linear scan.
BOOST_AUTO_TEST_CASE(class_of_matches_a_linear_scan_everywhere) {
    SizeClasses t = SizeClasses::defaults();
    for (std::size_t n = 0; n <= 33000; ++n) {
        int want = brute_class(t, n);
        if (t.class_of(n) != want) BOOST_FAIL("class_of(" << n << ") != " << want);
    }
}

BOOST_AUTO_TEST_CASE(class_of_with_alignment_picks_a_multiple) {
    SizeClasses t = SizeClasses::defaults();
    BOOST_TEST(t.class_of(1, 16) == 0);
    BOOST_TEST(t.class_of(1, 32) == 1);
    BOOST_TEST(t.class_of(100, 64) == 7);         // 128
    BOOST_TEST(t.class_of(129, 64) == 9);         // 192
    BOOST_TEST(t.class_of(1, 4096) == 27);        // 4096
    BOOST_TEST(t.class_of(4097, 4096) == 31);     // 8192 (5120..7168 are not multiples)
    BOOST_TEST(t.class_of(8193, 4096) == 33);     // 12288
    BOOST_TEST(t.class_of(1, 32768) == 39);
    BOOST_TEST(t.class_of(1, 65536) == kNone);    // no class that large
    BOOST_TEST(t.class_of(40000, 16) == kNone);
    for (std::size_t align = 1; align <= 65536; align *= 2)
        for (std::size_t n = 0; n <= 33000; n += 37) {
            int c = t.class_of(n, align);
            int want = brute_class(t, n, align);
            if (c != want) BOOST_FAIL("class_of(" << n << ", " << align << ") = " << c << " not " << want);
            if (c != kNone && (t.size_of(c) % align != 0 || t.size_of(c) < n))
                BOOST_FAIL("class " << c << " does not fit " << n << " at " << align);
        }
}

BOOST_AUTO_TEST_CASE(custom_table) {
    SizeClasses t = make({48, 96, 8192});
    BOOST_TEST(t.count() == 3u);
    BOOST_TEST(t.max_size() == 8192u);
    BOOST_TEST(t.class_of(0) == 0);
    BOOST_TEST(t.class_of(48) == 0);
    BOOST_TEST(t.class_of(49) == 1);
    BOOST_TEST(t.class_of(97) == 2);
    BOOST_TEST(t.class_of(4096) == 2);  // table path
    BOOST_TEST(t.class_of(4097) == 2);  // search path
    BOOST_TEST(t.class_of(8192) == 2);
    BOOST_TEST(t.class_of(8193) == kNone);
    BOOST_TEST(t.class_of(1, 32) == 1);    // 96 = 3 * 32
    BOOST_TEST(t.class_of(1, 64) == 2);    // only 8192
    BOOST_TEST(t.class_of(1, 16384) == kNone);
}

BOOST_AUTO_TEST_CASE(small_table_fails_above_its_largest) {
    SizeClasses t = make({16, 32});
    BOOST_TEST(t.class_of(32) == 1);
    BOOST_TEST(t.class_of(33) == kNone);
    BOOST_TEST(t.class_of(4096) == kNone);
    BOOST_TEST(t.class_of(5000) == kNone);
}

BOOST_AUTO_TEST_CASE(single_large_class) {
    SizeClasses t = make({65536});
    BOOST_TEST(t.class_of(0) == 0);
    BOOST_TEST(t.class_of(4096) == 0);
    BOOST_TEST(t.class_of(60000) == 0);
    BOOST_TEST(t.class_of(65537) == kNone);
}

BOOST_AUTO_TEST_CASE(full_table_of_64) {
    std::vector<std::uint32_t> sizes;
    for (std::uint32_t i = 1; i <= SizeClasses::kMaxClasses; ++i) sizes.push_back(16 * i);
    SizeClasses t = make(sizes);
    BOOST_TEST(t.count() == 64u);
    BOOST_TEST(t.class_of(1024) == 63);
    BOOST_TEST(t.class_of(1025) == kNone);
    for (std::size_t n = 0; n <= 1100; ++n) BOOST_TEST(t.class_of(n) == brute_class(t, n));
}

BOOST_AUTO_TEST_CASE(assign_rejects_bad_tables) {
    std::vector<std::uint32_t> too_many;
    for (std::uint32_t i = 1; i <= SizeClasses::kMaxClasses + 1; ++i) too_many.push_back(16 * i);
    const std::vector<std::vector<std::uint32_t>> bad = {
        {},                // empty
        {32, 16},          // unsorted
        {16, 64, 48},      // unsorted later on
        {16, 16},          // not strictly ascending
        {16, 40},          // not a multiple of 16
        {8},               // below the granule
        {0, 16},           // zero
        too_many,
    };
    for (const auto& sizes : bad) {
        SizeClasses t = SizeClasses::defaults();  // a good table first: rejection must empty it
        BOOST_TEST(!t.assign(sizes));
        BOOST_TEST(t.count() == 0u);
        BOOST_TEST(t.max_size() == 0u);
        BOOST_TEST(t.class_of(0) == kNone);
        BOOST_TEST(t.class_of(16) == kNone);
        BOOST_TEST(t.class_of(5000) == kNone);
        BOOST_TEST(t.class_of(16, 16) == kNone);
    }
}

BOOST_AUTO_TEST_CASE(empty_table_serves_nothing) {
    SizeClasses t;
    BOOST_TEST(t.count() == 0u);
    BOOST_TEST(t.max_size() == 0u);
    BOOST_TEST(t.class_of(0) == kNone);
    BOOST_TEST(t.class_of(100) == kNone);
    BOOST_TEST(t.class_of(100000) == kNone);
}

BOOST_AUTO_TEST_CASE(reassign_replaces_the_table) {
    SizeClasses t = SizeClasses::defaults();
    BOOST_REQUIRE(t.assign(std::vector<std::uint32_t>{256}));
    BOOST_TEST(t.count() == 1u);
    BOOST_TEST(t.class_of(1) == 0);
    BOOST_TEST(t.size_of(0) == 256u);
    BOOST_TEST(t.class_of(257) == kNone);
}

// One table: the library's defaults are the configuration's (config/defaults.cpp takes the
// same constexpr table), 40 classes from 16 B to 32 KiB.
BOOST_AUTO_TEST_CASE(defaults_are_the_one_table) {
    SizeClasses t = SizeClasses::defaults();
    BOOST_REQUIRE(t.count() == chainalloc::DefaultClasses::kCount);
    BOOST_TEST(t.count() == 40u);
    for (std::size_t c = 0; c < t.count(); ++c) BOOST_TEST(t.size_of(c) == chainalloc::kDefaultClasses.sizes[c]);
    BOOST_TEST(t.max_size() == 32768u);
}
