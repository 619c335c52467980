#include "plugin.hpp"

#include <cstring>

#include <dlfcn.h>

namespace chainalloc::preload {

void* find_plugin(const char* entry, const char* file, const char*& why) noexcept {
    why = nullptr;
    if (void* found = dlsym(RTLD_DEFAULT, entry)) return found;
    Dl_info self;
    if (!dladdr(reinterpret_cast<void*>(&find_plugin), &self) || !self.dli_fname) return nullptr;
    char path[4096];
    const char* slash = std::strrchr(self.dli_fname, '/');
    std::size_t dir = slash ? static_cast<std::size_t>(slash - self.dli_fname) + 1 : 0;
    std::size_t name = std::strlen(file) + 1;
    if (dir + name > sizeof path) return nullptr;
    std::memcpy(path, self.dli_fname, dir);
    std::memcpy(path + dir, file, name);
    void* handle = dlopen(path, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
    if (!handle) {
        why = dlerror();
        return nullptr;
    }
    return dlsym(handle, entry);
}

}  // namespace chainalloc::preload
