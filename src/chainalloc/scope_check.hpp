// The runtime half of Scoped's handle checks: the chain of open scopes and a serial per scope,
// so a handle can tell whether its scope is still open, and the abort when it is not. (The
// compile-time half, which keeps handles in their scope where the type system can see it, is
// in scoped_handle.hpp.)
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>

namespace chainalloc::detail {

// The chain of open scopes, as a handle sees it. A scope takes a fresh serial when it opens
// (and when deallocate_all empties it, which only the innermost open scope may do), so serials
// grow inward and a handle's scope is open iff walking outward from the innermost scope meets
// its serial. Usually that is the first step.
struct ScopeNode {
    ScopeNode* outer = nullptr;      // enclosing scope; null on the root
    ScopeNode* root = nullptr;       // the root node (itself on the root)
    ScopeNode* innermost = nullptr;  // root only: the deepest open scope
    std::uint64_t serial = 0;
    std::uint64_t next_serial = 1;   // root only

    std::uint64_t fresh_serial() noexcept { return root->next_serial++; }

    bool is_open(std::uint64_t s) const noexcept {  // asked of the root
        const ScopeNode* n = innermost;
        while (n && n->serial > s) n = n->outer;
        return n && n->serial == s;
    }
};

[[noreturn]] inline void scoped_abort(const char* what) noexcept {
    std::fprintf(stderr, "chainalloc::Scoped: %s\n", what);
    std::fflush(stderr);
    std::abort();
}

}  // namespace chainalloc::detail
