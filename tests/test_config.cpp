// config/: CHAINALLOC_* text -> ChainSpec (docs/DESIGN.md §3). Every call into the parser below is
// made with the heap counters armed, so each test also proves the parser allocates nothing.
#define BOOST_TEST_MODULE config
#include <algorithm>
#include <atomic>
#include <boost/test/unit_test.hpp>
#include <cstdlib>
#include <cstring>
#include <map>
#include <new>
#include <random>
#include <string>
#include <vector>

#include "config/parse.hpp"

#include <chainalloc/size_classes.hpp>

namespace cfg = chainalloc::config;
using cfg::ChainSpec;
using cfg::Diagnostic;
using cfg::LayerKind;

// --- heap counters ---------------------------------------------------------------------------

namespace {
std::atomic<bool> g_armed{false};
std::atomic<long> g_heap_calls{0};
void note_heap_call() {
    if (g_armed.load(std::memory_order_relaxed)) g_heap_calls.fetch_add(1);
}
}  // namespace

void* operator new(std::size_t n) {
    note_heap_call();
    if (void* p = std::malloc(n ? n : 1)) return p;
    throw std::bad_alloc();
}
void* operator new[](std::size_t n) { return ::operator new(n); }
// Out of line, so GCC does not see new's pointer reach free() and warn of a mismatch.
[[gnu::noinline]] void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { ::operator delete(p); }
void operator delete(void* p, std::size_t) noexcept { ::operator delete(p); }
void operator delete[](void* p, std::size_t) noexcept { ::operator delete(p); }

// malloc itself is counted too, by forwarding glibc's entry points to its internal names.
// Sanitizers own malloc, so there only operator new is counted.
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
#define CONFIG_TEST_COUNTS_MALLOC 1
extern "C" {
void* __libc_malloc(std::size_t);
void* __libc_calloc(std::size_t, std::size_t);
void* __libc_realloc(void*, std::size_t);
void __libc_free(void*);
void* malloc(std::size_t n) noexcept {
    note_heap_call();
    return __libc_malloc(n);
}
void* calloc(std::size_t n, std::size_t size) noexcept {
    note_heap_call();
    return __libc_calloc(n, size);
}
void* realloc(void* p, std::size_t n) noexcept {
    note_heap_call();
    return __libc_realloc(p, n);
}
void free(void* p) noexcept { __libc_free(p); }
}
#endif

namespace {

/// Counts heap calls made while it lives.
class HeapWatch {
public:
    HeapWatch() {
        g_heap_calls = 0;
        g_armed = true;
    }
    ~HeapWatch() { g_armed = false; }
    long calls() const { return g_heap_calls.load(); }
};

// --- helpers ---------------------------------------------------------------------------------

struct Parsed {
    bool ok;
    ChainSpec spec;
    std::string diag;
};

Parsed parse(const char* text) {
    Parsed r{};
    Diagnostic diag;
    long heap_calls;
    {
        HeapWatch watch;
        r.ok = cfg::parse_chain(text, r.spec, diag);
        heap_calls = watch.calls();
    }
    BOOST_TEST(heap_calls == 0, "parse_chain allocated for: " << text);
    r.diag = diag.text;
    BOOST_TEST(r.ok == r.diag.empty(), "diagnostic iff failure: " << text);
    BOOST_TEST(r.diag.find('\n') == std::string::npos);
    return r;
}

ChainSpec parse_ok(const char* text) {
    Parsed r = parse(text);
    BOOST_TEST(r.ok, "should parse: " << text << " -> " << r.diag);
    return r.spec;
}

std::string parse_error(const char* text) {
    Parsed r = parse(text);
    BOOST_TEST(!r.ok, "should fail: " << text);
    ChainSpec def;
    cfg::default_chain(def);
    BOOST_TEST((r.spec == def), "a failed parse leaves the default chain: " << text);
    return r.diag;
}

bool contains(const std::string& s, const std::string& part) {
    return s.find(part) != std::string::npos;
}

std::string format(const ChainSpec& spec) {
    char buf[cfg::kMaxChainText];
    std::size_t n;
    long heap_calls;
    {
        HeapWatch watch;
        n = cfg::format_chain(spec, buf, sizeof buf);
        heap_calls = watch.calls();
    }
    BOOST_TEST(heap_calls == 0);
    BOOST_TEST(n < sizeof buf);
    BOOST_TEST(std::strlen(buf) == n);
    return buf;
}

std::vector<std::uint32_t> classes(const cfg::FreeListSpec& fl) {
    return {fl.classes, fl.classes + fl.class_count};
}

std::vector<std::uint32_t> classes_of(const char* text) {
    ChainSpec spec = parse_ok(text);
    return classes(spec.layers[0].freelist);
}

std::uint64_t max_of(const std::string& size) {
    std::string text = "freelist(max=" + size + ") > system";
    return parse_ok(text.c_str()).layers[0].freelist.max_bytes;
}

// A fake environment for load(): GetEnv is a plain function pointer, so it reads a global.
std::map<std::string, std::string> g_env;
const char* fake_getenv(const char* name) {
    // Compares in place: find(name) would build a std::string, which the heap watch would see.
    for (const auto& [key, value] : g_env)
        if (key == name) return value.c_str();
    return nullptr;
}

struct Loaded {
    bool ok;
    ChainSpec spec;
    std::string diag;
};

Loaded load(std::map<std::string, std::string> env) {
    g_env = std::move(env);
    Loaded r{};
    Diagnostic diag;
    long heap_calls;
    {
        HeapWatch watch;
        r.ok = cfg::load(fake_getenv, r.spec, diag);
        heap_calls = watch.calls();
    }
    BOOST_TEST(heap_calls == 0);
    r.diag = diag.text;
    BOOST_TEST(r.ok == r.diag.empty());
    return r;
}

ChainSpec default_spec() {
    ChainSpec spec;
    cfg::default_chain(spec);
    return spec;
}

const std::string kPrefix = "chainalloc: CHAINALLOC_CHAIN: ";

}  // namespace

// --- the counters themselves -----------------------------------------------------------------

BOOST_AUTO_TEST_CASE(heap_watch_sees_allocations) {
    // Without this, "0 heap calls" above could mean the counters are broken.
    long with_new, with_malloc;
    {
        HeapWatch watch;
        std::string* s = new std::string(100, 'x');
        with_new = watch.calls();
        delete s;
    }
    {
        HeapWatch watch;
        void* volatile p = std::malloc(32);
        with_malloc = watch.calls();
        std::free(p);
    }
    BOOST_TEST(with_new >= 1);
#ifdef CONFIG_TEST_COUNTS_MALLOC
    BOOST_TEST(with_malloc == 1);
#else
    (void)with_malloc;
#endif
}

// --- defaults --------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(default_chain_is_freelist_then_system) {
    ChainSpec spec = default_spec();
    BOOST_TEST(spec.layer_count == 2u);
    BOOST_TEST((spec.layers[0].kind == LayerKind::freelist));
    BOOST_TEST((spec.layers[1].kind == LayerKind::system));
    BOOST_TEST(!spec.stats);
    BOOST_TEST(!spec.strict);
    const cfg::FreeListSpec& fl = spec.layers[0].freelist;
    std::vector<std::uint32_t> expected = {16, 32, 48, 64, 80, 96, 112, 128};
    for (std::uint32_t base = 128; base < 32768; base *= 2)
        for (std::uint32_t q = 1; q <= 4; ++q) expected.push_back(base + q * base / 4);
    BOOST_TEST(expected.size() == 40u);
    BOOST_TEST(classes(fl) == expected, boost::test_tools::per_element());
    BOOST_TEST(fl.classes[8] == 160u);
    BOOST_TEST(fl.classes[39] == 32768u);
    BOOST_TEST(fl.classes[38] == 28672u);
    BOOST_TEST(fl.max_bytes == 0u);
    BOOST_TEST(fl.cache == 512u);
    BOOST_TEST(fl.decay_ms == 1000u);
}

// The configuration's default classes are the library's: one table for both.
BOOST_AUTO_TEST_CASE(default_classes_are_the_librarys) {
    const cfg::FreeListSpec& fl = default_spec().layers[0].freelist;
    chainalloc::SizeClasses lib = chainalloc::SizeClasses::defaults();
    BOOST_REQUIRE(fl.class_count == lib.count());
    for (std::size_t c = 0; c < lib.count(); ++c) BOOST_TEST(fl.classes[c] == lib.size_of(c));
}

BOOST_AUTO_TEST_CASE(bare_layer_names_take_defaults) {
    ChainSpec spec = parse_ok("proxy > freelist > system");
    BOOST_TEST(spec.layer_count == 3u);
    BOOST_TEST(spec.layers[0].proxy.log[0] == '\0');
    BOOST_TEST((spec.layers[0].proxy.events == cfg::Events::all));
    BOOST_TEST(spec.layers[0].proxy.sample == 1u);
    BOOST_TEST((spec.layers[1] == default_spec().layers[0]));
    BOOST_TEST((parse_ok("freelist > system") == default_spec()));
    BOOST_TEST((parse_ok("freelist() > system()") == default_spec()));
}

BOOST_AUTO_TEST_CASE(layer_names) {
    BOOST_TEST(std::string(cfg::layer_name(LayerKind::freelist)) == "freelist");
    BOOST_TEST(std::string(cfg::layer_name(LayerKind::proxy)) == "proxy");
    BOOST_TEST(std::string(cfg::layer_name(LayerKind::system)) == "system");
    BOOST_TEST(std::string(cfg::layer_name(LayerKind::jemalloc)) == "jemalloc");
    BOOST_TEST(std::string(cfg::layer_name(LayerKind::null)) == "null");
    for (const char* terminal : {"system", "jemalloc", "null"}) {
        ChainSpec spec = parse_ok(terminal);
        BOOST_TEST(spec.layer_count == 1u);
        BOOST_TEST(cfg::is_terminal(spec.layers[0].kind));
        BOOST_TEST(std::string(cfg::layer_name(spec.layers[0].kind)) == terminal);
    }
}

// --- chain syntax ----------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(whitespace_around_tokens) {
    ChainSpec tight =
        parse_ok("freelist(classes=16,32,max=1M,cache=8,decay=2s)>proxy(events=summary)>null");
    ChainSpec loose = parse_ok(
        "  freelist ( classes = 16 , 32 ,\tmax = 1M , cache = 8 , decay = 2s )\n>  "
        "proxy( events = summary ) > null  ");
    BOOST_TEST((tight == loose));
    BOOST_TEST(tight.layer_count == 3u);
}

BOOST_AUTO_TEST_CASE(stats_and_strict_untouched_by_parse_chain) {
    ChainSpec spec;
    spec.stats = true;
    spec.strict = true;
    Diagnostic diag;
    BOOST_TEST(cfg::parse_chain("system", spec, diag));
    BOOST_TEST(spec.stats);
    BOOST_TEST(spec.strict);
    BOOST_TEST(!cfg::parse_chain("bogus", spec, diag));
    BOOST_TEST(spec.stats);
    BOOST_TEST(spec.strict);
    BOOST_TEST(spec.layer_count == 2u);  // the default chain
}

BOOST_AUTO_TEST_CASE(unknown_layer_exact_text) {
    BOOST_TEST(parse_error("fre > system") ==
               kPrefix + "unknown layer 'fre' (accepted: freelist, proxy, system, jemalloc, null)");
    BOOST_TEST(parse_error("Freelist > system") ==
               kPrefix +
                   "unknown layer 'Freelist' (accepted: freelist, proxy, system, jemalloc, null)");
}

BOOST_AUTO_TEST_CASE(terminal_layer_rules_exact_text) {
    BOOST_TEST(parse_error("system > freelist > system") ==
               kPrefix + "terminal layer 'system' must be last");
    BOOST_TEST(parse_error("null > system") == kPrefix + "terminal layer 'null' must be last");
    BOOST_TEST(parse_error("freelist") ==
               kPrefix +
                   "chain must end with a terminal layer (system, jemalloc, null), not "
                   "'freelist'");
    BOOST_TEST(parse_error("freelist > proxy") ==
               kPrefix +
                   "chain must end with a terminal layer (system, jemalloc, null), not "
                   "'proxy'");
    parse_ok("freelist > jemalloc");
    parse_ok("freelist > null");
}

BOOST_AUTO_TEST_CASE(at_most_eight_layers) {
    ChainSpec eight =
        parse_ok("proxy > proxy > proxy > proxy > freelist > freelist > proxy > system");
    BOOST_TEST(eight.layer_count == 8u);
    std::string err =
        parse_error("proxy > proxy > proxy > proxy > freelist > freelist > proxy > proxy > system");
    BOOST_TEST(contains(err, "more than 8 layers"), err);
    BOOST_TEST(contains(err, "(accepted: at most 8)"), err);
}

BOOST_AUTO_TEST_CASE(malformed_chains) {
    BOOST_TEST(parse_error("") == kPrefix +
                                      "empty chain (accepted: layers separated by '>', e.g. "
                                      "freelist > system)");
    BOOST_TEST(contains(parse_error("   "), "empty chain"));
    BOOST_TEST(parse_error("freelist >") ==
               kPrefix +
                   "expected a layer name, found end of text (accepted: freelist, proxy, "
                   "system, jemalloc, null)");
    BOOST_TEST(contains(parse_error("> system"), "expected a layer name, found '>'"));
    BOOST_TEST(contains(parse_error("freelist >> system"), "expected a layer name, found '>'"));
    BOOST_TEST(contains(parse_error("freelist system"),
                        "unexpected 'system' after layer 'freelist' (accepted: '>' or end"));
    BOOST_TEST(contains(parse_error("freelist(cache=1) (x) > system"), "unexpected '('"));
    BOOST_TEST(contains(parse_error("freelist(cache=1 > system"), "expected ',' or ')'"));
    BOOST_TEST(contains(parse_error("freelist(cache=1"), "found end of text"));
    BOOST_TEST(contains(parse_error("freelist(cache=1,) > system"), "expected a key in freelist"));
    BOOST_TEST(
        contains(parse_error("freelist(cache 1) > system"), "expected '=' after key 'cache'"));
    BOOST_TEST(contains(parse_error("9lives > system"), "expected a layer name, found '9lives'"));
}

BOOST_AUTO_TEST_CASE(unknown_and_repeated_keys) {
    BOOST_TEST(parse_error("freelist(foo=1) > system") ==
               kPrefix + "unknown key 'foo' for freelist (accepted: classes, max, cache, decay, check)");
    BOOST_TEST(parse_error("proxy(max=1) > system") ==
               kPrefix + "unknown key 'max' for proxy (accepted: log, events, sample, mode, stacks, format)");
    BOOST_TEST(parse_error("freelist > system(x=1)") ==
               kPrefix + "unknown key 'x' for system (accepted: none)");
    BOOST_TEST(contains(parse_error("freelist > jemalloc(x=1)"), "for jemalloc (accepted: none)"));
    BOOST_TEST(contains(parse_error("freelist(max=1M, max=2M) > system"),
                        "key 'max' given twice for freelist"));
}

// --- freelist classes ------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(class_lists_and_ranges) {
    using V = std::vector<std::uint32_t>;
    BOOST_TEST(classes_of("freelist(classes=16,32,48) > system") == (V{16, 32, 48}));
    BOOST_TEST(classes_of("freelist(classes=64..128/32) > system") == (V{64, 96, 128}));
    BOOST_TEST(classes_of("freelist(classes=16..64) > system") == (V{16, 32, 48, 64}));
    BOOST_TEST(classes_of("freelist(classes=32..100/32) > system") == (V{32, 64, 96}));
    BOOST_TEST(classes_of("freelist(classes=48..48/16) > system") == (V{48}));
    BOOST_TEST(classes_of("freelist(classes=1K,2k,1M) > system") == (V{1024, 2048, 1048576}));
    BOOST_TEST(classes_of("freelist(classes=256M) > system") == (V{268435456}));
    BOOST_TEST(classes_of("freelist(classes=16..1024/16) > system").size() == 64u);
}

BOOST_AUTO_TEST_CASE(classes_sorted_and_deduplicated) {
    using V = std::vector<std::uint32_t>;
    BOOST_TEST(classes_of("freelist(classes=64,16,32,16,64) > system") == (V{16, 32, 64}));
    BOOST_TEST(classes_of("freelist(classes=32..96/32,16..64/16) > system") ==
               (V{16, 32, 48, 64, 96}));
    // 64 distinct classes after dedupe is fine even though 70 items were given.
    BOOST_TEST(classes_of("freelist(classes=16..1024/16,16,32,48,64,80,96) > system").size() ==
               64u);
}

BOOST_AUTO_TEST_CASE(class_list_ends_at_next_key) {
    ChainSpec spec = parse_ok("freelist(classes=16,32,48, max=64M) > system");
    BOOST_TEST(classes(spec.layers[0].freelist) == (std::vector<std::uint32_t>{16, 32, 48}));
    BOOST_TEST(spec.layers[0].freelist.max_bytes == 64u << 20);
    spec = parse_ok("freelist(classes=16..32 , cache = 3) > system");
    BOOST_TEST(spec.layers[0].freelist.class_count == 2u);
    BOOST_TEST(spec.layers[0].freelist.cache == 3u);
    spec = parse_ok("freelist(cache=1, classes=16, max=1K) > system");
    BOOST_TEST(spec.layers[0].freelist.class_count == 1u);
}

BOOST_AUTO_TEST_CASE(bad_classes) {
    BOOST_TEST(parse_error("freelist(classes=24) > system") ==
               kPrefix + "class 24 is not a multiple of 16");
    BOOST_TEST(parse_error("freelist(classes=16..64/8) > system") ==
               kPrefix + "class 24 is not a multiple of 16");
    BOOST_TEST(contains(parse_error("freelist(classes=0) > system"), "class 0 is not a positive"));
    BOOST_TEST(contains(parse_error("freelist(classes=512M) > system"),
                        "class 536870912 is larger than 256M"));
    BOOST_TEST(parse_error("freelist(classes=16..1040/16) > system") ==
               kPrefix + "more than 64 classes at '16..1040/16' (accepted: at most 64)");
    // A huge range stops at the 65th class rather than walking the whole range.
    BOOST_TEST(contains(parse_error("freelist(classes=16..256M/16) > system"), "more than 64"));
    BOOST_TEST(contains(parse_error("freelist(classes=) > system"), "empty list for 'classes'"));
    BOOST_TEST(
        contains(parse_error("freelist(classes=, max=1) > system"), "empty list for 'classes'"));
    BOOST_TEST(contains(parse_error("freelist(classes=16,,32) > system"),
                        "expected a class in classes=, found ','"));
    BOOST_TEST(parse_error("freelist(classes=64..16) > system") ==
               kPrefix + "bad range '64..16' (accepted: A..B/S with A <= B and S > 0)");
    BOOST_TEST(contains(parse_error("freelist(classes=16..64/0) > system"), "bad range"));
    BOOST_TEST(parse_error("freelist(classes=abc) > system") ==
               kPrefix + "bad class 'abc' (accepted: N or A..B/S, multiples of 16)");
    BOOST_TEST(contains(parse_error("freelist(classes=16..) > system"), "bad class '16..'"));
    BOOST_TEST(contains(parse_error("freelist(classes=16..32/) > system"), "bad class"));
    BOOST_TEST(contains(parse_error("freelist(classes=-16) > system"), "bad class '-16'"));
    // Not followed by '=', so "max" is read as a (bad) class.
    BOOST_TEST(contains(parse_error("freelist(classes=16, max) > system"), "bad class 'max'"));
}

// --- sizes and integers ----------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(max_sizes) {
    BOOST_TEST(max_of("0") == 0u);
    BOOST_TEST(max_of("4096") == 4096u);
    BOOST_TEST(max_of("64B") == 64u);
    BOOST_TEST(max_of("1K") == 1024u);
    BOOST_TEST(max_of("1k") == 1024u);
    BOOST_TEST(max_of("3KB") == 3072u);
    BOOST_TEST(max_of("512M") == 512ull << 20);
    BOOST_TEST(max_of("512mb") == 512ull << 20);
    BOOST_TEST(max_of("512MiB") == 512ull << 20);
    BOOST_TEST(max_of("2gib") == 2ull << 30);
    BOOST_TEST(max_of("7T") == 7ull << 40);
    BOOST_TEST(max_of("16777215T") == 16777215ull << 40);
    BOOST_TEST(max_of("18446744073709551615") == UINT64_MAX);
}

BOOST_AUTO_TEST_CASE(bad_max_sizes) {
    BOOST_TEST(parse_error("freelist(max=12Q) > system") ==
               kPrefix +
                   "bad size '12Q' for max (accepted: a number with optional K, M, G or T "
                   "suffix)");
    for (const char* bad : {"M", "", "1.5M", "-1", "1MM", "1iB", "1KiBx", "0x10", "1 M"}) {
        std::string text = std::string("freelist(max=") + bad + ") > system";
        BOOST_TEST(!parse(text.c_str()).ok, text);
    }
    BOOST_TEST(contains(parse_error("freelist(max=16777216T) > system"),
                        "size '16777216T' for max is too large"));
    BOOST_TEST(
        contains(parse_error("freelist(max=18446744073709551616) > system"), "is too large"));
    BOOST_TEST(
        contains(parse_error("freelist(max=99999999999999999999999K) > system"), "is too large"));
}

BOOST_AUTO_TEST_CASE(cache_values) {
    BOOST_TEST(parse_ok("freelist(cache=0) > system").layers[0].freelist.cache == 0u);
    BOOST_TEST(parse_ok("freelist(cache=65536) > system").layers[0].freelist.cache == 65536u);
    BOOST_TEST(parse_error("freelist(cache=65537) > system") ==
               kPrefix + "bad cache '65537' (accepted: an integer 0..65536)");
    BOOST_TEST(contains(parse_error("freelist(cache=-1) > system"), "bad cache '-1'"));
    BOOST_TEST(contains(parse_error("freelist(cache=1K) > system"), "bad cache '1K'"));
    BOOST_TEST(contains(parse_error("freelist(cache=) > system"), "bad cache ''"));
}

std::uint32_t decay_of(const std::string& value) {
    std::string text = "freelist(decay=" + value + ") > system";
    return parse_ok(text.c_str()).layers[0].freelist.decay_ms;
}

BOOST_AUTO_TEST_CASE(decay_values) {
    BOOST_TEST(parse_ok("freelist > system").layers[0].freelist.decay_ms == 1000u);
    BOOST_TEST(decay_of("0") == 0u);
    BOOST_TEST(decay_of("0ms") == 0u);
    BOOST_TEST(decay_of("0s") == 0u);
    BOOST_TEST(decay_of("250") == 250u);  // no unit: milliseconds
    BOOST_TEST(decay_of("250ms") == 250u);
    BOOST_TEST(decay_of("2s") == 2000u);
    BOOST_TEST(decay_of("0002s") == 2000u);
    BOOST_TEST(decay_of("1000") == 1000u);
    // One hour is the most, in either unit.
    BOOST_TEST(decay_of("3600000") == 3600000u);
    BOOST_TEST(decay_of("3600000ms") == 3600000u);
    BOOST_TEST(decay_of("3600s") == 3600000u);
    // Only the layer it is given to.
    ChainSpec two = parse_ok("freelist(decay=0) > freelist > system");
    BOOST_TEST(two.layers[0].freelist.decay_ms == 0u);
    BOOST_TEST(two.layers[1].freelist.decay_ms == 1000u);
    ChainSpec spec = parse_ok("freelist(decay=5s, classes=16,32, cache=1) > system");
    BOOST_TEST(spec.layers[0].freelist.decay_ms == 5000u);
    BOOST_TEST(spec.layers[0].freelist.class_count == 2u);
    spec = parse_ok("freelist(classes=16,32, decay=5s) > system");  // ends the class list
    BOOST_TEST(spec.layers[0].freelist.class_count == 2u);
    BOOST_TEST(spec.layers[0].freelist.decay_ms == 5000u);
}

// check=cheap (the default: the checks every list makes) or check=full (live bits, poison).
BOOST_AUTO_TEST_CASE(check_values) {
    BOOST_TEST(!parse_ok("freelist > system").layers[0].freelist.check_full);
    BOOST_TEST(!parse_ok("freelist(check=cheap) > system").layers[0].freelist.check_full);
    ChainSpec spec = parse_ok("freelist(check=full) > freelist > system");
    BOOST_TEST(spec.layers[0].freelist.check_full);
    BOOST_TEST(!spec.layers[1].freelist.check_full);  // only the layer it is given to
    const std::string accepted = " (accepted: cheap, full)";
    BOOST_TEST(parse_error("freelist(check=) > system") == kPrefix + "bad check ''" + accepted);
    BOOST_TEST(parse_error("freelist(check=FULL) > system") == kPrefix + "bad check 'FULL'" + accepted);
    BOOST_TEST(parse_error("freelist(check=on) > system") == kPrefix + "bad check 'on'" + accepted);
    BOOST_TEST(contains(parse_error("freelist(check=full, check=cheap) > system"),
                        "key 'check' given twice for freelist"));
    // Written only when full, in the full and the brief form alike; it parses back.
    std::string text = format(parse_ok("freelist(classes=16,check=full) > system"));
    BOOST_TEST(text == "freelist(classes=16,max=0,cache=512,decay=1s,check=full) > system");
    BOOST_TEST(parse_ok(text.c_str()).layers[0].freelist.check_full);
    BOOST_TEST(format(parse_ok("freelist(classes=16,check=cheap) > system")).find("check") == std::string::npos);
}

BOOST_AUTO_TEST_CASE(bad_decay_values) {
    const std::string accepted =
        " (accepted: milliseconds 0..3600000 as N or Nms, or seconds 0..3600 as Ns)";
    BOOST_TEST(parse_error("freelist(decay=) > system") == kPrefix + "bad decay ''" + accepted);
    BOOST_TEST(parse_error("freelist(decay=-1) > system") == kPrefix + "bad decay '-1'" + accepted);
    BOOST_TEST(parse_error("freelist(decay=5m) > system") == kPrefix + "bad decay '5m'" + accepted);
    BOOST_TEST(parse_error("freelist(decay=2h) > system") == kPrefix + "bad decay '2h'" + accepted);
    BOOST_TEST(parse_error("freelist(decay=3600001) > system") ==
               kPrefix + "bad decay '3600001'" + accepted);
    BOOST_TEST(parse_error("freelist(decay=3601s) > system") ==
               kPrefix + "bad decay '3601s'" + accepted);
    BOOST_TEST(parse_error("freelist(decay=99999999999999999999) > system") ==
               kPrefix + "bad decay '99999999999999999999'" + accepted);
    BOOST_TEST(parse_error("freelist(decay=99999999999999999999s) > system") ==
               kPrefix + "bad decay '99999999999999999999s'" + accepted);
    BOOST_TEST(parse_error("freelist(decay=18446744073709551617ms) > system") ==
               kPrefix + "bad decay '18446744073709551617ms'" + accepted);
    for (const char* bad : {"ms", "s", "1.5s", "+1", "1S", "1MS", "1sec", "1 s", "1msx", "0x10",
                            "1e3", "4294967296"}) {
        std::string text = std::string("freelist(decay=") + bad + ") > system";
        BOOST_TEST(!parse(text.c_str()).ok, text);
    }
    BOOST_TEST(contains(parse_error("freelist(decay=1, decay=2) > system"),
                        "key 'decay' given twice for freelist"));
    BOOST_TEST(parse_error("proxy(decay=1) > system") ==
               kPrefix + "unknown key 'decay' for proxy (accepted: log, events, sample, mode, stacks, format)");
    // Through load, the line says what runs instead.
    Loaded r = load({{"CHAINALLOC_CHAIN", "freelist(decay=2h) > system"}});
    BOOST_TEST(!r.ok);
    BOOST_TEST(r.diag == kPrefix + "bad decay '2h'" + accepted + "; running the default chain");
    BOOST_TEST((r.spec == default_spec()));
}

// --- proxy -----------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(proxy_keys) {
    ChainSpec spec = parse_ok("proxy(log=/tmp/x.%p.log, events=summary, sample=100) > system");
    const cfg::ProxySpec& px = spec.layers[0].proxy;
    BOOST_TEST(std::string(px.log) == "/tmp/x.%p.log");
    BOOST_TEST((px.events == cfg::Events::summary));
    BOOST_TEST(px.sample == 100u);
    BOOST_TEST(std::string(parse_ok("proxy(log=-) > system").layers[0].proxy.log) == "-");
    BOOST_TEST(std::string(parse_ok("proxy(log=stderr) > system").layers[0].proxy.log) == "stderr");
    // Anything but ',', ')' and whitespace belongs to the path, even '>' and '('.
    BOOST_TEST(std::string(parse_ok("proxy(log=a>b(c)>system").layers[0].proxy.log) == "a>b(c");
    BOOST_TEST(parse_ok("proxy(sample=4294967295) > system").layers[0].proxy.sample == 4294967295u);
    BOOST_TEST((parse_ok("proxy(events=all) > system").layers[0].proxy.events == cfg::Events::all));
    // The log file's permissions: 0600 unless asked, never less than the owner's read/write.
    BOOST_TEST(parse_ok("proxy > system").layers[0].proxy.mode == 0600u);
    BOOST_TEST(parse_ok("proxy(mode=0644) > system").layers[0].proxy.mode == 0644u);
    BOOST_TEST(parse_ok("proxy(mode=640) > system").layers[0].proxy.mode == 0640u);
    // Call stacks: on by default, any depth up to kMaxStackDepth, 0 = off.
    BOOST_TEST(parse_ok("proxy > system").layers[0].proxy.stacks == cfg::kDefaultStackDepth);
    BOOST_TEST(parse_ok("proxy(stacks=0) > system").layers[0].proxy.stacks == 0u);
    BOOST_TEST(parse_ok("proxy(stacks=128) > system").layers[0].proxy.stacks == 128u);
    // The log's form: compact records unless text lines are asked for.
    BOOST_TEST((parse_ok("proxy > system").layers[0].proxy.format == cfg::LogFormat::compact));
    BOOST_TEST((parse_ok("proxy(format=text) > system").layers[0].proxy.format == cfg::LogFormat::text));
    BOOST_TEST((parse_ok("proxy(format=compact) > system").layers[0].proxy.format == cfg::LogFormat::compact));
}

BOOST_AUTO_TEST_CASE(bad_proxy_values) {
    BOOST_TEST(parse_error("proxy(events=some) > system") ==
               kPrefix + "bad events 'some' (accepted: all, summary)");
    BOOST_TEST(contains(parse_error("proxy(sample=0) > system"), "bad sample '0'"));
    BOOST_TEST(contains(parse_error("proxy(sample=4294967296) > system"), "bad sample"));
    BOOST_TEST(contains(parse_error("proxy(log=) > system"), "bad log path ''"));
    BOOST_TEST(parse_error("proxy(mode=0400) > system") ==
               kPrefix + "bad mode '0400' (accepted: octal permissions from 0600 to 0777, e.g. 0640)");
    BOOST_TEST(contains(parse_error("proxy(mode=0689) > system"), "bad mode '0689'"));
    BOOST_TEST(contains(parse_error("proxy(mode=10644) > system"), "bad mode"));
    BOOST_TEST(contains(parse_error("proxy(mode=) > system"), "bad mode ''"));
    BOOST_TEST(parse_error("proxy(stacks=129) > system") ==
               kPrefix + "bad stacks '129' (accepted: an integer 0..128, 0 = no call stacks)");
    BOOST_TEST(contains(parse_error("proxy(stacks=-1) > system"), "bad stacks '-1'"));
    BOOST_TEST(contains(parse_error("proxy(stacks=) > system"), "bad stacks ''"));
    BOOST_TEST(parse_error("proxy(format=binary) > system") == kPrefix + "bad format 'binary' (accepted: compact, text)");
    std::string long_path(cfg::kMaxPath - 1, 'p');
    std::string ok_text = "proxy(log=" + long_path + ") > system";
    BOOST_TEST(std::string(parse_ok(ok_text.c_str()).layers[0].proxy.log) == long_path);
    std::string too_long = "proxy(log=" + long_path + "p) > system";
    BOOST_TEST(contains(parse_error(too_long.c_str()), "bad log path"));
}

// --- diagnostics -----------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(diagnostics_stay_one_short_line) {
    std::string err = parse_error("fre\x01\x1b[31m > system");
    BOOST_TEST(err == kPrefix +
                          "unknown layer 'fre' (accepted: freelist, proxy, system, "
                          "jemalloc, null)");
    err = parse_error("freelist(max=1\x01\n2) > system");
    BOOST_TEST(contains(err, "'1\\x01'"), err);
    std::string huge = "freelist(max=" + std::string(5000, '9') + "Q) > system";
    err = parse_error(huge.c_str());
    BOOST_TEST(err.size() < cfg::kMaxDiagnostic);
    BOOST_TEST(contains(err, "...'"), err);
    Diagnostic custom;
    ChainSpec spec;
    BOOST_TEST(!cfg::parse_chain("nope", spec, custom, "CHAINALLOC_PRESET"));
    BOOST_TEST(std::string(custom.text).rfind("chainalloc: CHAINALLOC_PRESET: ", 0) == 0);
}

// --- canonical text and round trips ----------------------------------------------------------

BOOST_AUTO_TEST_CASE(canonical_text_of_default_chain) {
    BOOST_TEST(format(default_spec()) ==
               "freelist(classes=16..128/16,160..256/32,320..512/64,640..1024/128,1280..2048/256,"
               "2560..4096/512,5120..8192/1024,10240..16384/2048,20480..32768/4096,max=0,cache=512,"
               "decay=1s) > system");
    BOOST_TEST(format(parse_ok("proxy(log=-, sample=3) > freelist(classes=16,48,1M, max=64M, "
                               "cache=0, decay=0) > null")) ==
               "proxy(log=-,events=all,sample=3,stacks=24) > "
               "freelist(classes=16,48,1048576,max=64M,cache=0,decay=0) > null");
    BOOST_TEST(format(parse_ok("proxy > jemalloc")) == "proxy(events=all,sample=1,stacks=24) > jemalloc");
    BOOST_TEST(format(parse_ok("proxy(mode=644) > jemalloc")) == "proxy(events=all,sample=1,stacks=24,mode=0644) > jemalloc");
    BOOST_TEST(format(parse_ok("proxy(stacks=0) > jemalloc")) == "proxy(events=all,sample=1,stacks=0) > jemalloc");
    BOOST_TEST(format(parse_ok("freelist(max=1536K)>system")).find("max=1536K") !=
               std::string::npos);
    BOOST_TEST(format(parse_ok("freelist(max=1000)>system")).find("max=1000,") !=
               std::string::npos);
}

// Whole seconds as Ns, the rest as Nms; every form parses back to the same value.
BOOST_AUTO_TEST_CASE(canonical_decay) {
    auto decay_text = [](const char* value) {
        std::string text = format(parse_ok(("freelist(classes=16,decay=" + std::string(value) +
                                            ") > system").c_str()));
        std::size_t at = text.find("decay=");
        return text.substr(at, text.find(')') - at);
    };
    BOOST_TEST(decay_text("0") == "decay=0");
    BOOST_TEST(decay_text("0s") == "decay=0");
    BOOST_TEST(decay_text("250") == "decay=250ms");
    BOOST_TEST(decay_text("2000") == "decay=2s");
    BOOST_TEST(decay_text("1500ms") == "decay=1500ms");
    BOOST_TEST(decay_text("3600s") == "decay=3600s");
    BOOST_TEST(decay_text("3599999") == "decay=3599999ms");
}

// Brief: decay only when it is not the default (a report need not repeat it).
BOOST_AUTO_TEST_CASE(brief_text) {
    auto brief = [](const char* chain) {
        ChainSpec spec = parse_ok(chain);
        char buf[cfg::kMaxChainText];
        long heap_calls;
        std::size_t n;
        {
            HeapWatch watch;
            n = cfg::format_chain(spec, buf, sizeof buf, true);
            heap_calls = watch.calls();
        }
        BOOST_TEST(heap_calls == 0);
        BOOST_TEST(std::strlen(buf) == n);
        return std::string(buf);
    };
    BOOST_TEST(brief("freelist > system") ==
               "freelist(40 classes 16..32K,max=0,cache=512) > system");
    BOOST_TEST(brief("freelist(decay=1000ms) > system") ==
               "freelist(40 classes 16..32K,max=0,cache=512) > system");
    BOOST_TEST(brief("freelist(decay=250ms) > system") ==
               "freelist(40 classes 16..32K,max=0,cache=512,decay=250ms) > system");
    BOOST_TEST(brief("freelist(decay=0, classes=16,32) > system") ==
               "freelist(classes=16,32,max=0,cache=512,decay=0) > system");
}

BOOST_AUTO_TEST_CASE(format_truncates_safely) {
    ChainSpec spec = default_spec();
    std::string full = format(spec);
    char small[20];
    std::memset(small, '#', sizeof small);
    BOOST_TEST(cfg::format_chain(spec, small, 10) == full.size());
    BOOST_TEST(std::string(small) == full.substr(0, 9));
    BOOST_TEST(small[10] == '#');  // nothing written past cap
    BOOST_TEST(cfg::format_chain(spec, small, 0) == full.size());
    BOOST_TEST(small[0] == full[0]);  // cap 0 writes nothing at all
    BOOST_TEST(cfg::format_chain(spec, small, 1) == full.size());
    BOOST_TEST(small[0] == '\0');
}

BOOST_AUTO_TEST_CASE(round_trip_of_random_specs) {
    std::mt19937_64 rng(20261125);
    auto pick = [&](std::uint64_t n) {
        return std::uniform_int_distribution<std::uint64_t>(0, n - 1)(rng);
    };
    const std::string path_chars = "abcXYZ019/._-%pe>(=~";
    for (int round = 0; round < 500; ++round) {
        ChainSpec spec;
        spec.layer_count = std::uint32_t(1 + pick(cfg::kMaxLayers));
        for (std::uint32_t i = 0; i < spec.layer_count; ++i) {
            bool last = i + 1 == spec.layer_count;
            LayerKind kind = last ? LayerKind(2 + pick(3)) : LayerKind(pick(2));
            cfg::default_layer(kind, spec.layers[i]);
            if (kind == LayerKind::freelist) {
                cfg::FreeListSpec& fl = spec.layers[i].freelist;
                std::vector<std::uint32_t> sizes;
                std::uint32_t count = std::uint32_t(1 + pick(cfg::kMaxClasses));
                std::uint32_t size = 0;
                for (std::uint32_t c = 0; c < count; ++c) {
                    // Mostly runs with a common step (to exercise A..B/S), sometimes jumps.
                    size += 16 * std::uint32_t(pick(4) == 0 ? 1 + pick(1000) : 1 + pick(2));
                    if (size > cfg::kMaxClassSize) break;
                    sizes.push_back(size);
                }
                fl.class_count = std::uint32_t(sizes.size());
                std::copy(sizes.begin(), sizes.end(), fl.classes);
                fl.max_bytes = pick(3) == 0 ? 0
                               : pick(2)    ? pick(1ull << 50)
                                            : (1 + pick(1000)) << (10 * pick(5));
                fl.cache = std::uint32_t(pick(cfg::kMaxCache + 1));
                fl.decay_ms = pick(3) == 0 ? 1000 * std::uint32_t(pick(cfg::kMaxDecayMs / 1000 + 1))
                                           : std::uint32_t(pick(cfg::kMaxDecayMs + 1));
                fl.check_full = pick(2) == 0;
            } else if (kind == LayerKind::proxy) {
                cfg::ProxySpec& px = spec.layers[i].proxy;
                std::size_t len = pick(4) == 0 ? 0 : 1 + pick(cfg::kMaxPath - 1);
                for (std::size_t c = 0; c < len; ++c)
                    px.log[c] = path_chars[pick(path_chars.size())];
                px.events = pick(2) ? cfg::Events::all : cfg::Events::summary;
                px.sample = std::uint32_t(1 + pick(UINT32_MAX));
                px.stacks = std::uint32_t(pick(cfg::kMaxStackDepth + 1));
            }
        }
        std::string text = format(spec);
        Parsed back = parse(text.c_str());
        BOOST_TEST_REQUIRE(back.ok, text << " -> " << back.diag);
        BOOST_TEST_REQUIRE((back.spec == spec), text);
        BOOST_TEST(format(back.spec) == text);
    }
}

// --- presets ---------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(presets_all_parse) {
    auto all = cfg::presets();
    BOOST_TEST(all.size() >= 6u);
    BOOST_TEST(std::string(all[0].name) == "default");
    for (const cfg::Preset& p : all) {
        BOOST_TEST_CONTEXT("preset " << p.name) {
            BOOST_TEST(std::strlen(p.summary) > 0u);
            BOOST_TEST(std::strchr(p.summary, '\n') == nullptr);
            ChainSpec spec = parse_ok(p.chain);
            BOOST_TEST((parse_ok(format(spec).c_str()) == spec));
            BOOST_TEST(cfg::find_preset(p.name) == &p);
        }
    }
    for (const char* name : {"default", "fast", "jemalloc", "trace", "capped", "system"})
        BOOST_TEST(cfg::find_preset(name) != nullptr, name);
    BOOST_TEST(cfg::find_preset("nope") == nullptr);
    BOOST_TEST(cfg::find_preset("defaul") == nullptr);
    BOOST_TEST(cfg::find_preset(nullptr) == nullptr);
}

BOOST_AUTO_TEST_CASE(presets_mean_what_they_say) {
    BOOST_TEST((parse_ok(cfg::find_preset("default")->chain) == default_spec()));
    ChainSpec fast = parse_ok(cfg::find_preset("fast")->chain);
    BOOST_TEST(fast.layers[0].freelist.cache > default_spec().layers[0].freelist.cache);
    ChainSpec je = parse_ok(cfg::find_preset("jemalloc")->chain);
    BOOST_TEST((je.layers[je.layer_count - 1].kind == LayerKind::jemalloc));
    ChainSpec trace = parse_ok(cfg::find_preset("trace")->chain);
    BOOST_TEST((trace.layers[0].kind == LayerKind::proxy));
    ChainSpec capped = parse_ok(cfg::find_preset("capped")->chain);
    BOOST_TEST((capped.layers[capped.layer_count - 1].kind == LayerKind::null));
    BOOST_TEST(capped.layers[0].freelist.max_bytes == 64ull << 20);
    const cfg::FreeListSpec& cfl = capped.layers[0].freelist;
    BOOST_TEST(cfl.classes[cfl.class_count - 1] >= (1u << 20));
    ChainSpec sys = parse_ok(cfg::find_preset("system")->chain);
    BOOST_TEST(sys.layer_count == 1u);
    BOOST_TEST((sys.layers[0].kind == LayerKind::system));
}

// --- load: the environment -------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(load_unset_and_empty_mean_default) {
    Loaded r = load({});
    BOOST_TEST(r.ok);
    BOOST_TEST((r.spec == default_spec()));
    r = load({{"CHAINALLOC_CHAIN", ""},
              {"CHAINALLOC_PRESET", " "},
              {"CHAINALLOC_LOG", ""},
              {"CHAINALLOC_STATS", ""},
              {"CHAINALLOC_STRICT", ""}});
    BOOST_TEST(r.ok, r.diag);
    BOOST_TEST((r.spec == default_spec()));
}

BOOST_AUTO_TEST_CASE(load_chain_and_preset) {
    Loaded r = load({{"CHAINALLOC_CHAIN", "proxy > system"}});
    BOOST_TEST(r.ok);
    BOOST_TEST((r.spec == parse_ok("proxy > system")));
    r = load({{"CHAINALLOC_PRESET", "capped"}});
    BOOST_TEST(r.ok);
    BOOST_TEST((r.spec == parse_ok(cfg::find_preset("capped")->chain)));
    r = load({{"CHAINALLOC_CHAIN", "system"}, {"CHAINALLOC_PRESET", "fast"}});
    BOOST_TEST(!r.ok);
    BOOST_TEST(r.diag ==
               "chainalloc: CHAINALLOC_PRESET: cannot be combined with CHAINALLOC_CHAIN "
               "(accepted: one of them); CHAINALLOC_CHAIN is used");
    BOOST_TEST((r.spec == parse_ok("system")));
}

BOOST_AUTO_TEST_CASE(load_unknown_preset_lists_all_names) {
    Loaded r = load({{"CHAINALLOC_PRESET", "x"}});
    BOOST_TEST(!r.ok);
    std::string names;
    for (const cfg::Preset& p : cfg::presets())
        names += (names.empty() ? "" : ", ") + std::string(p.name);
    BOOST_TEST(r.diag == "chainalloc: CHAINALLOC_PRESET: unknown preset 'x' (accepted: " + names +
                             "); running the default chain");
    BOOST_TEST(contains(r.diag, "(accepted: default, capped, fast, jemalloc, system, trace"));
    BOOST_TEST((r.spec == default_spec()));
}

BOOST_AUTO_TEST_CASE(load_log_prepends_a_proxy) {
    Loaded r = load({{"CHAINALLOC_LOG", "/tmp/a.%p.log"}});
    BOOST_TEST(r.ok);
    BOOST_TEST(r.spec.layer_count == 3u);
    BOOST_TEST((r.spec.layers[0].kind == LayerKind::proxy));
    BOOST_TEST(std::string(r.spec.layers[0].proxy.log) == "/tmp/a.%p.log");
    BOOST_TEST(r.spec.layers[0].proxy.sample == 1u);
    BOOST_TEST((r.spec.layers[1] == default_spec().layers[0]));
    BOOST_TEST((r.spec == parse_ok("proxy(log=/tmp/a.%p.log) > freelist > system")));

    r = load({{"CHAINALLOC_PRESET", "system"}, {"CHAINALLOC_LOG", "-"}});
    BOOST_TEST(r.ok);
    BOOST_TEST((r.spec == parse_ok("proxy(log=-) > system")));

    r = load({{"CHAINALLOC_LOG", "my log"}, {"CHAINALLOC_CHAIN", "freelist(max=1G) > system"}});
    BOOST_TEST(!r.ok);
    BOOST_TEST(contains(r.diag, "chainalloc: CHAINALLOC_LOG: bad log path 'my log'"), r.diag);
    BOOST_TEST(contains(r.diag, "; no log"), r.diag);
    BOOST_TEST((r.spec == parse_ok("freelist(max=1G) > system")));  // the chain still applies

    r = load(
        {{"CHAINALLOC_CHAIN", "proxy > proxy > proxy > proxy > proxy > proxy > proxy > system"},
         {"CHAINALLOC_LOG", "x"}});
    BOOST_TEST(!r.ok);
    BOOST_TEST(contains(r.diag, "chainalloc: CHAINALLOC_LOG: no room"), r.diag);
}

BOOST_AUTO_TEST_CASE(load_stats_and_strict) {
    Loaded r = load({{"CHAINALLOC_STATS", "1"}, {"CHAINALLOC_STRICT", "1"}, {"CHAINALLOC_VERBOSE", "1"}});
    BOOST_TEST(r.ok);
    BOOST_TEST(r.spec.stats);
    BOOST_TEST(r.spec.strict);
    BOOST_TEST(r.spec.verbose);
    r = load({{"CHAINALLOC_STATS", "0"}, {"CHAINALLOC_STRICT", "0"}});
    BOOST_TEST(r.ok);
    BOOST_TEST(!r.spec.stats);
    BOOST_TEST(!r.spec.strict);
    // The words people use for a switch, as mimalloc's options take them.
    for (const char* on : {"yes", "on", "true"}) {
        r = load({{"CHAINALLOC_STATS", on}, {"CHAINALLOC_STRICT", on}});
        BOOST_TEST((r.ok && r.spec.stats && r.spec.strict), on);
    }
    for (const char* off : {"no", "off", "false"}) {
        r = load({{"CHAINALLOC_STATS", off}, {"CHAINALLOC_STRICT", off}});
        BOOST_TEST((r.ok && !r.spec.stats && !r.spec.strict), off);
    }
    r = load({{"CHAINALLOC_STATS", "maybe"}});
    BOOST_TEST(!r.ok);
    BOOST_TEST(r.diag ==
               "chainalloc: CHAINALLOC_STATS: bad value 'maybe' (accepted: 1, yes, on, true or 0, no, off, "
               "false, json, or a file path with a '/', %p and %e expanded); statistics stay off");
    BOOST_TEST(!r.spec.stats);
    r = load({{"CHAINALLOC_STRICT", "10"}});
    BOOST_TEST(r.diag ==
               "chainalloc: CHAINALLOC_STRICT: bad value '10' (accepted: 1, yes, on, true or 0, no, off, "
               "false); not strict");
    BOOST_TEST(!r.spec.strict);
}

BOOST_AUTO_TEST_CASE(load_stats_destinations) {
    Loaded r = load({{"CHAINALLOC_STATS", "json"}});
    BOOST_TEST(r.ok);
    BOOST_TEST((r.spec.stats && r.spec.stats_format == cfg::StatsFormat::json));
    BOOST_TEST(std::string(r.spec.stats_path).empty());
    r = load({{"CHAINALLOC_STATS", "/tmp/stats.%e.%p.txt"}});
    BOOST_TEST((r.ok && r.spec.stats && r.spec.stats_format == cfg::StatsFormat::text));
    BOOST_TEST(std::string(r.spec.stats_path) == "/tmp/stats.%e.%p.txt");
    r = load({{"CHAINALLOC_STATS", "./run.json"}});
    BOOST_TEST((r.ok && r.spec.stats_format == cfg::StatsFormat::json));
    r = load({{"CHAINALLOC_STATS", "stats.txt"}});  // a path needs a '/': a typo is not a file
    BOOST_TEST(!r.ok);
    BOOST_TEST(!r.spec.stats);
    std::string too_long = "/" + std::string(cfg::kMaxPath, 'x');
    r = load({{"CHAINALLOC_STATS", too_long}});
    BOOST_TEST(!r.ok);
}

// Each setting stands alone: a bad one falls back by itself, says what runs instead, and the
// others apply; every bad one has its own line.
BOOST_AUTO_TEST_CASE(load_each_setting_alone) {
    Loaded r = load({{"CHAINALLOC_CHAIN", "freelist(max=1G) > system"}, {"CHAINALLOC_STATS", "yes please"}});
    BOOST_TEST(!r.ok);
    BOOST_TEST((r.spec.layers[0].freelist.max_bytes == (std::uint64_t{1} << 30)));  // the cap stays
    BOOST_TEST(!contains(r.diag, "default chain"), r.diag);
    BOOST_TEST(contains(r.diag, "statistics stay off"), r.diag);

    r = load({{"CHAINALLOC_CHAIN", "fre > system"},
              {"CHAINALLOC_STATS", "maybe"},
              {"CHAINALLOC_STRICT", "1"},
              {"CHAINALLOC_LOG", "/tmp/x"}});
    BOOST_TEST(!r.ok);
    BOOST_TEST(r.diag == kPrefix +
                             "unknown layer 'fre' (accepted: freelist, proxy, system, "
                             "jemalloc, null); running the default chain\n"
                             "chainalloc: CHAINALLOC_STATS: bad value 'maybe' (accepted: 1, yes, on, true or "
                             "0, no, off, false, json, or a file path with a '/', %p and %e expanded); "
                             "statistics stay off");
    BOOST_TEST(r.spec.strict);
    BOOST_TEST(!r.spec.stats);
    BOOST_TEST((r.spec == [] {
        ChainSpec want = parse_ok("proxy(log=/tmp/x) > freelist > system");
        want.strict = true;
        return want;
    }()));

    r = load({{"CHAINALLOC_STATS", "1"}, {"CHAINALLOC_STRICT", "sure"}, {"CHAINALLOC_LOG", "a b"}});
    BOOST_TEST(!r.ok);
    BOOST_TEST(contains(r.diag, "CHAINALLOC_LOG"), r.diag);
    BOOST_TEST(contains(r.diag, "CHAINALLOC_STRICT"), r.diag);
    BOOST_TEST(r.spec.stats);
    BOOST_TEST(!r.spec.strict);
    BOOST_TEST((r.spec.layer_count == 2u));  // no proxy: the log path was bad
}

// Misspelled variable names are pointed out, with the closest known name.
BOOST_AUTO_TEST_CASE(unknown_variable_names) {
    const char* env[] = {"PATH=/bin", "CHAINALLOC_CHIAN=freelist > system", "CHAINALLOC_STATS=1",
                         "CHAINALLOC_WHATEVER=1", "CHAINALLOC_LOG", nullptr};
    Diagnostic diag;
    long heap_calls;
    bool ok;
    {
        HeapWatch watch;
        ok = cfg::check_names(env, diag);
        heap_calls = watch.calls();
    }
    BOOST_TEST(heap_calls == 0);
    BOOST_TEST(!ok);
    BOOST_TEST(std::string(diag.text) ==
               "chainalloc: CHAINALLOC_CHIAN: unknown variable, ignored (did you mean CHAINALLOC_CHAIN?)\n"
               "chainalloc: CHAINALLOC_WHATEVER: unknown variable, ignored (known: CHAINALLOC_CHAIN, _PRESET, "
               "_LOG, _STATS, _STRICT, _VERBOSE)");
    const char* fine[] = {"CHAINALLOC_CHAIN=system", "CHAINALLOCX=1", "CHAINALLOC_LIB=/x.so",
                          "CHAINALLOC_LOG_PROGRESS=never", "CHAINALLOC_LOG_SCANNER=python",
                          nullptr};  // the launcher's and the reader's
    BOOST_TEST(cfg::check_names(fine, diag));
    BOOST_TEST(std::string(diag.text).empty());
}
