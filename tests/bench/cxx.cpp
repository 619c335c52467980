// Workload 5: the standard containers as C++ programs use them, all through operator new and
// so through the preloaded malloc: node-based map insert/erase, vectors of strings filled and
// cleared, and a rolling-window unordered_map.
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

#include "bench_common.h"

namespace {

// Lengths 4..63: about a fifth fit libstdc++'s 15-char small-string buffer, the rest allocate.
std::string make_string(bench_rng &r)
{
    std::size_t n = 4 + bench_below(&r, 60);
    return std::string(n, static_cast<char>('a' + bench_below(&r, 26)));
}

std::uint64_t map_phase(bench_rng &r, std::uint64_t ops)
{
    std::map<int, std::string> m;
    std::uint64_t sum = 0;
    for (std::uint64_t n = 0; n < ops; ++n) {
        int key = static_cast<int>(bench_below(&r, 20000));
        if (bench_below(&r, 2) == 0) {
            m.insert_or_assign(key, make_string(r));
        } else if (auto it = m.find(key); it != m.end()) {
            sum += it->second.size() + static_cast<unsigned char>(it->second.back());
            m.erase(it);
        }
    }
    return sum + m.size();
}

std::uint64_t vector_phase(bench_rng &r, std::uint64_t ops)
{
    std::uint64_t sum = 0;
    std::vector<std::string> v;
    for (std::uint64_t done = 0; done < ops;) {
        std::size_t batch = 16 + bench_below(&r, 2000);
        for (std::size_t i = 0; i < batch; ++i)
            v.push_back(make_string(r));
        sum += v.size() + v[batch / 2].size();
        done += batch;
        // Half the time keep the capacity (clear), half start over so growth reallocates too.
        if (bench_below(&r, 2) == 0)
            v.clear();
        else
            std::vector<std::string>().swap(v);
    }
    return sum;
}

std::uint64_t unordered_phase(bench_rng &r, std::uint64_t ops)
{
    constexpr std::uint64_t window = 50000;
    std::unordered_map<std::uint64_t, std::uint64_t> u;
    std::uint64_t sum = 0;
    for (std::uint64_t n = 0; n < ops; ++n) {
        u.emplace(n * 2654435761u, bench_next(&r));
        if (n >= window) {
            auto it = u.find((n - window) * 2654435761u);
            sum += it->second & 0xff;
            u.erase(it);
        }
    }
    return sum + u.size();
}

} // namespace

BENCH_RUN(std::uint64_t ops)
{
    bench_rng r;
    bench_rng_seed(&r, 5);
    return map_phase(r, ops) + vector_phase(r, ops) + unordered_phase(r, ops);
}

int main(int argc, char **argv)
{
    std::uint64_t ops = bench_scaled(1500000, bench_scale(argc, argv));
    std::uint64_t t0 = bench_now_ns();
    std::uint64_t sum = bench_run(ops);
    std::uint64_t t1 = bench_now_ns();
    bench_report("cxx", sum, t1 - t0);
    return 0;
}
