// Generic access to the members of ANNarchy's generated C++ structures.
//
// ANNarchy's Python bindings expose a network's variables one by one as
// Python lists and do not expose the state an exact restart needs (last
// spike times, event-driven trace timestamps, spikes in delay buffers, the
// random engines).  checkpoint generates a small C++ file per compiled
// network that includes ANNarchy's own headers and lists every data member
// of every population and projection structure; the templates here turn
// each member into a field that Python reads and writes in bulk, through
// ctypes, as a flat array of values plus the lengths of nested containers.
//
// A member of type T, std::vector<T>, std::deque<T> or std::queue<T>
// (nested to any depth, T arithmetic) is supported; anything else is
// reported as unsupported (depth -1) and left alone.
//
// Layout of a field of depth d: ``lengths`` holds, level by level, the size
// of every container (level 0: the member itself, one entry; level l + 1:
// one entry per element of the level-l containers), and ``flat`` the
// scalars in order.  A depth-0 field has no lengths and one scalar.

#pragma once

#include <cstdint>
#include <cstring>
#include <deque>
#include <queue>
#include <random>
#include <sstream>
#include <type_traits>
#include <vector>

namespace ck {

template <class T, class = void> struct traits {
    static constexpr int depth = std::is_arithmetic<T>::value ? 0 : -1;
    using leaf = T;
};
template <class T, class A> struct traits<std::vector<T, A>> {
    static constexpr int depth = traits<T>::depth < 0 ? -1 : traits<T>::depth + 1;
    using leaf = typename traits<T>::leaf;
};
template <class T, class A> struct traits<std::deque<T, A>> {
    static constexpr int depth = traits<T>::depth < 0 ? -1 : traits<T>::depth + 1;
    using leaf = typename traits<T>::leaf;
};
template <class T, class C> struct traits<std::queue<T, C>> {
    static constexpr int depth = traits<T>::depth < 0 ? -1 : traits<T>::depth + 1;
    using leaf = typename traits<T>::leaf;
};

template <class T> struct is_queue : std::false_type {};
template <class T, class C> struct is_queue<std::queue<T, C>> : std::true_type {};

// numpy's dtype kind: 'b' bool, 'i' signed, 'u' unsigned, 'f' float
template <class T> constexpr char kind_of() {
    return std::is_same<T, bool>::value ? 'b'
         : std::is_floating_point<T>::value ? 'f'
         : std::is_signed<T>::value ? 'i' : 'u';
}

// A queue has no iteration: work on a copy's underlying container.
template <class T, class C> const C& as_container(const std::queue<T, C>& q) {
    struct open : std::queue<T, C> {
        static const C& get(const std::queue<T, C>& x) { return x.*(&open::c); }
    };
    return open::get(q);
}

// A LIL projection's connectivity is protected in ANNarchy's LILMatrix base:
// name it through a derived class to get pointers to the members.
template <class S> struct open_lil : S {
    static constexpr auto post_rank_member() { return &open_lil::post_rank; }
    static constexpr auto pre_rank_member() { return &open_lil::pre_rank; }
};

// -- counting ----------------------------------------------------------------

template <class T> void count(const T& x, int level, int64_t* counts) {
    if constexpr (traits<T>::depth == 0) {
        counts[level] += 1;
    } else if constexpr (is_queue<T>::value) {
        count(as_container(x), level, counts);
    } else {
        counts[level] += 1;
        if constexpr (traits<typename T::value_type>::depth == 0) {
            counts[level + 1] += static_cast<int64_t>(x.size());
        } else {
            for (const auto& e : x) count(e, level + 1, counts);
        }
    }
}

// -- reading -----------------------------------------------------------------

template <class T> void read(const T& x, int level, int64_t** lengths, char** flat) {
    using leaf = typename traits<T>::leaf;
    if constexpr (traits<T>::depth == 0) {
        std::memcpy(*flat, &x, sizeof(T));
        *flat += sizeof(T);
    } else if constexpr (is_queue<T>::value) {
        read(as_container(x), level, lengths, flat);
    } else {
        *lengths[level]++ = static_cast<int64_t>(x.size());
        using V = typename T::value_type;
        if constexpr (traits<V>::depth == 0 && std::is_same<T, std::vector<V>>::value && !std::is_same<V, bool>::value) {
            std::memcpy(*flat, x.data(), x.size() * sizeof(leaf));
            *flat += x.size() * sizeof(leaf);
        } else {
            for (const auto& e : x) read(e, level + 1, lengths, flat);
        }
    }
}

// -- writing (resizes every container to the given lengths) -------------------

template <class T> void write(T& x, int level, const int64_t** lengths, const char** flat) {
    using leaf = typename traits<T>::leaf;
    if constexpr (traits<T>::depth == 0) {
        std::memcpy(&x, *flat, sizeof(T));
        *flat += sizeof(T);
    } else if constexpr (is_queue<T>::value) {
        typename T::container_type c;
        write(c, level, lengths, flat);
        x = T(std::move(c));
    } else {
        const int64_t n = *lengths[level]++;
        using V = typename T::value_type;
        if constexpr (traits<V>::depth == 0 && std::is_same<T, std::vector<V>>::value && !std::is_same<V, bool>::value) {
            x.resize(static_cast<size_t>(n));
            std::memcpy(x.data(), *flat, static_cast<size_t>(n) * sizeof(leaf));
            *flat += static_cast<size_t>(n) * sizeof(leaf);
        } else {
            x.resize(static_cast<size_t>(n));
            for (auto&& e : x) {
                if constexpr (std::is_same<V, bool>::value) {
                    bool b;
                    std::memcpy(&b, *flat, sizeof(bool));
                    *flat += sizeof(bool);
                    e = b;
                } else {
                    write(e, level + 1, lengths, flat);
                }
            }
        }
    }
}

// -- one field: a member of the structure a global pointer points to --------

struct Field {
    const char* object;   // the structure's global pointer, e.g. "pop0"
    const char* name;     // the member's name
    int slot;             // index of that pointer's address in the slot table
    int depth;            // -1: unsupported type
    char kind;            // numpy dtype kind of the scalars
    int itemsize;
    void (*shape)(void** slot, int64_t* counts);
    void (*read)(void** slot, int64_t* lengths, void* flat);
    void (*write)(void** slot, const int64_t* counts, const int64_t* lengths, const void* flat);
};

template <class S, auto member> struct Ops {
    using M = std::remove_reference_t<decltype(std::declval<S&>().*member)>;
    using leaf = typename traits<M>::leaf;
    static constexpr int depth = traits<M>::depth;

    // slot: the address of ANNarchy's global pointer to the structure
    static M& ref(void** slot) { return (*reinterpret_cast<S**>(*slot))->*member; }

    static void shape(void** slot, int64_t* counts) {
        if constexpr (depth >= 0) count(ref(slot), 0, counts);
    }
    static void read_(void** slot, int64_t* lengths, void* flat) {
        if constexpr (depth >= 0) {
            int64_t counts[16] = {0};
            count(ref(slot), 0, counts);
            int64_t* cursors[16];
            int64_t offset = 0;
            for (int l = 0; l < depth; ++l) { cursors[l] = lengths + offset; offset += counts[l]; }
            char* out = static_cast<char*>(flat);
            ck::read(ref(slot), 0, cursors, &out);
        }
    }
    static void write_(void** slot, const int64_t* counts, const int64_t* lengths, const void* flat) {
        if constexpr (depth >= 0) {
            const int64_t* cursors[16];
            int64_t offset = 0;
            for (int l = 0; l < depth; ++l) { cursors[l] = lengths + offset; offset += counts[l]; }
            const char* in = static_cast<const char*>(flat);
            ck::write(ref(slot), 0, cursors, &in);
        }
    }
    static Field make(const char* object, const char* name, int slot) {
        return Field{object, name, slot, depth, kind_of<leaf>(), static_cast<int>(sizeof(leaf)),
                     &shape, &read_, &write_};
    }
};

// The mt19937 engines: their textual state (624 words and a position).
inline int engine_words(std::vector<std::mt19937>* engines) {
    return engines->empty() ? 0 : static_cast<int>(std::mt19937::state_size) + 1;
}
inline void read_engines(std::vector<std::mt19937>* engines, uint64_t* out) {
    for (auto& e : *engines) {
        std::stringstream ss;
        ss << e;
        for (size_t i = 0; i <= std::mt19937::state_size; ++i) ss >> *out++;
    }
}
inline int write_engines(std::vector<std::mt19937>* engines, const uint64_t* in) {
    // parse every engine before changing any, so that a bad state changes nothing
    std::vector<std::mt19937> parsed(engines->size());
    for (auto& e : parsed) {
        std::stringstream ss;
        for (size_t i = 0; i <= std::mt19937::state_size; ++i) ss << *in++ << ' ';
        ss >> e;
        if (ss.fail()) return -1;
    }
    *engines = parsed;
    return 0;
}

}  // namespace ck

#define CK_FIELD(object_name, slot, Struct, member) \
    ck::Ops<Struct, &Struct::member>::make(object_name, #member, slot)
#define CK_LIL_FIELD(object_name, slot, Struct, member) \
    ck::Ops<Struct, ck::open_lil<Struct>::member##_member()>::make(object_name, #member, slot)
