// A small C++ translation unit for `scripts/bench --programs` (g++ -O2 -c): standard
// containers, <iostream>, std::variant and a few templates, so the compiler allocates as it would on
// ordinary code. Never run, only compiled.
#include <algorithm>
#include <iostream>
#include <map>
#include <memory>
#include <numeric>
#include <sstream>
#include <string>
#include <unordered_map>
#include <variant>
#include <vector>

namespace demo {

template <typename K, typename V>
struct Index {
    std::map<K, std::vector<V>> by_key;
    void add(const K &k, V v) { by_key[k].push_back(std::move(v)); }
    template <typename F>
    std::size_t count_if(F f) const
    {
        std::size_t n = 0;
        for (const auto &[k, vs] : by_key)
            n += std::count_if(vs.begin(), vs.end(), f);
        return n;
    }
};

using Value = std::variant<long, double, std::string>;

std::string describe(const Value &v)
{
    return std::visit([](const auto &x) {
        std::ostringstream os;
        os << x;
        return os.str();
    }, v);
}

std::vector<std::string> tokens(const std::string &line)
{
    std::istringstream in(line);
    std::vector<std::string> out;
    for (std::string w; in >> w;)
        out.push_back(w);
    std::sort(out.begin(), out.end());
    return out;
}

} // namespace demo

int main()
{
    demo::Index<std::string, demo::Value> index;
    std::unordered_map<std::string, std::shared_ptr<std::vector<int>>> cache;
    std::string line;
    while (std::getline(std::cin, line)) {
        auto words = demo::tokens(line);
        for (std::size_t i = 0; i < words.size(); ++i)
            index.add(words[i], i % 2 ? demo::Value{static_cast<long>(i)} : demo::Value{words[i]});
        auto &slot = cache[line];
        if (!slot)
            slot = std::make_shared<std::vector<int>>(words.size());
        std::iota(slot->begin(), slot->end(), 0);
    }
    std::cout << index.count_if([](const demo::Value &v) { return demo::describe(v).size() > 3; })
              << '\n';
}
