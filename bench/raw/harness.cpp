// Raw Verilator harness: the speed baseline for the cocotb co-simulation.
//
// It drives the same nmc array Verilog with no Python at all: load the program,
// stream every input beat as fast as the array accepts it, accept every result
// at once.  The job file is plain text, written by bench/rawsim.py:
//   L <count>        then <count> lines "<addr hex> <data hex>"   (load words)
//   I <count>        then <count> lines "<beat hex>"                (input beats)
//   O <count>                                                       (results expected)
// Results are written one per line as the o_stream payload in hex ({last, data}) to argv[2]; the last
// line is "cycles <n> seconds <t>" for the streaming phase only.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "Vtop.h"
#include "verilated.h"

// Verilator escapes the "__" of Amaranth's flattened port names (load__valid) as "___05F".

using Words = std::vector<uint32_t>;  // little-endian 32-bit words

static Words parse_hex(const std::string& hex) {
    Words w;
    for (int end = static_cast<int>(hex.size()); end > 0; end -= 8) {
        int begin = end >= 8 ? end - 8 : 0;
        w.push_back(static_cast<uint32_t>(std::stoul(hex.substr(begin, end - begin), nullptr, 16)));
    }
    return w;
}

template <typename T>
static void assign(T& sig, const Words& w) {
    if constexpr (std::is_integral_v<T>) {
        uint64_t v = 0;
        for (size_t i = 0; i < w.size() && i < 2; i++) v |= static_cast<uint64_t>(w[i]) << (32 * i);
        sig = static_cast<T>(v);
    } else {  // VlWide<N>
        for (size_t i = 0; i < sig.size(); i++) sig[i] = i < w.size() ? w[i] : 0;
    }
}

template <typename T>
static std::string to_hex(const T& sig) {
    char buf[20];
    if constexpr (std::is_integral_v<T>) {
        std::snprintf(buf, sizeof buf, "%llx", static_cast<unsigned long long>(sig));
        return buf;
    } else {
        std::string s;
        for (size_t i = sig.size(); i-- > 0;) {
            std::snprintf(buf, sizeof buf, "%08x", sig[i]);
            s += buf;
        }
        return s;
    }
}

int main(int argc, char** argv) {
    if (argc != 3) {
        std::cerr << "usage: " << argv[0] << " JOB RESULTS\n";
        return 2;
    }
    std::ifstream job(argv[1]);
    std::string tag;
    size_t n;
    std::vector<Words> load, beats;
    size_t expected = 0;
    while (job >> tag >> n) {
        if (tag == "L") {
            for (size_t i = 0; i < n; i++) {
                std::string a, d;
                job >> a >> d;
                Words w = parse_hex(d);
                w.insert(w.begin(), static_cast<uint32_t>(std::stoul(a, nullptr, 16)));  // addr = bits [31:0]
                load.push_back(w);
            }
        } else if (tag == "I") {
            for (size_t i = 0; i < n; i++) {
                std::string b;
                job >> b;
                beats.push_back(parse_hex(b));
            }
        } else if (tag == "O") {
            expected = n;
        }
    }

    auto ctx = std::make_unique<VerilatedContext>();
    auto top = std::make_unique<Vtop>(ctx.get());
    uint64_t cycle = 0;
    auto tick = [&]() {
        top->clk = 0;
        top->eval();
        top->clk = 1;
        top->eval();
        cycle++;
    };
    top->rst = 1;
    top->load___05Fvalid = 0;
    top->i_stream___05Fvalid = 0;
    top->o_stream___05Fready = 0;
    tick();
    tick();
    top->rst = 0;

    // Program load: a transfer happens on an edge where valid & ready.
    for (size_t i = 0; i < load.size();) {
        top->load___05Fvalid = 1;
        assign(top->load___05Fpayload, load[i]);
        top->clk = 0;
        top->eval();
        bool fire = top->load___05Fready;
        top->clk = 1;
        top->eval();
        cycle++;
        if (fire) i++;
    }
    top->load___05Fvalid = 0;
    tick();

    std::ofstream out(argv[2]);
    std::vector<std::string> results;
    results.reserve(expected);
    size_t next_beat = 0;
    uint64_t start_cycle = cycle;
    auto t0 = std::chrono::steady_clock::now();
    top->o_stream___05Fready = 1;
    while (results.size() < expected) {
        top->clk = 0;
        top->i_stream___05Fvalid = next_beat < beats.size();
        if (next_beat < beats.size()) assign(top->i_stream___05Fpayload, beats[next_beat]);
        top->eval();
        bool in_fire = top->i_stream___05Fvalid && top->i_stream___05Fready;
        bool out_fire = top->o_stream___05Fvalid;
        if (out_fire) results.push_back(to_hex(top->o_stream___05Fpayload));
        top->clk = 1;
        top->eval();
        cycle++;
        if (in_fire) next_beat++;
        if (cycle - start_cycle > 1000000000ULL) {
            std::cerr << "timeout: " << results.size() << " of " << expected << " results\n";
            return 1;
        }
    }
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    for (auto& r : results) out << r << "\n";
    out << "cycles " << (cycle - start_cycle) << " seconds " << seconds << "\n";
    top->final();
    return 0;
}
