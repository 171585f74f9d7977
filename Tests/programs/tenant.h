/* What the isolation test programs share: the PTX they load and the values a tenant publishes
 * for another to guess at. These programs print handles and pointers (they are not part of the
 * differential suite): the test passes one tenant's values to the other on its command line. */
#ifndef XPU_TENANT_H
#define XPU_TENANT_H

#include "xpu_test.h"

/* tenant_poke stores a value at any address it is given: pointed at memory its context does not
 * own, the launch faults (CUDA_ERROR_ILLEGAL_ADDRESS, sticky in that context).
 * tenant_add adds k to each of n words. tenant_counter is a module variable. */
static const char tenant_ptx[] =
    ".version 7.0\n"
    ".target sm_80\n"
    ".address_size 64\n"
    "\n"
    ".global .align 4 .u32 tenant_counter;\n"
    "\n"
    ".visible .entry tenant_poke(\n"
    "\t.param .u64 tenant_poke_address,\n"
    "\t.param .u32 tenant_poke_value\n"
    ")\n"
    "{\n"
    "\t.reg .b32 \t%r<2>;\n"
    "\t.reg .b64 \t%rd<3>;\n"
    "\tld.param.u64 \t%rd1, [tenant_poke_address];\n"
    "\tld.param.u32 \t%r1, [tenant_poke_value];\n"
    "\tcvta.to.global.u64 \t%rd2, %rd1;\n"
    "\tst.global.u32 \t[%rd2], %r1;\n"
    "\tret;\n"
    "}\n"
    "\n"
    ".visible .entry tenant_add(\n"
    "\t.param .u64 tenant_add_data,\n"
    "\t.param .u32 tenant_add_n,\n"
    "\t.param .u32 tenant_add_k\n"
    ")\n"
    "{\n"
    "\t.reg .pred \t%p<2>;\n"
    "\t.reg .b32 \t%r<9>;\n"
    "\t.reg .b64 \t%rd<5>;\n"
    "\tld.param.u64 \t%rd1, [tenant_add_data];\n"
    "\tld.param.u32 \t%r1, [tenant_add_n];\n"
    "\tld.param.u32 \t%r2, [tenant_add_k];\n"
    "\tmov.u32 \t%r3, %ctaid.x;\n"
    "\tmov.u32 \t%r4, %ntid.x;\n"
    "\tmov.u32 \t%r5, %tid.x;\n"
    "\tmad.lo.s32 \t%r6, %r3, %r4, %r5;\n"
    "\tsetp.ge.u32 \t%p1, %r6, %r1;\n"
    "\t@%p1 bra \t$L__done;\n"
    "\tcvta.to.global.u64 \t%rd2, %rd1;\n"
    "\tmul.wide.u32 \t%rd3, %r6, 4;\n"
    "\tadd.s64 \t%rd4, %rd2, %rd3;\n"
    "\tld.global.u32 \t%r7, [%rd4];\n"
    "\tadd.s32 \t%r8, %r7, %r2;\n"
    "\tst.global.u32 \t[%rd4], %r8;\n"
    "$L__done:\n"
    "\tret;\n"
    "}\n";

/* The tenant module's kernels, loaded in the current context. */
typedef struct {
    CUmodule module;
    CUfunction poke;
    CUfunction add;
} tenant_kernels;

static inline tenant_kernels tenant_load(void) {
    tenant_kernels k;
    CHECK(cuModuleLoadData(&k.module, tenant_ptx));
    CHECK(cuModuleGetFunction(&k.poke, k.module, "tenant_poke"));
    CHECK(cuModuleGetFunction(&k.add, k.module, "tenant_add"));
    return k;
}

/* Launches tenant_poke(address, value) on `stream`. */
static inline CUresult tenant_poke_at(tenant_kernels *k, CUdeviceptr address, unsigned value, CUstream stream) {
    void *params[] = {&address, &value};
    return cuLaunchKernel(k->poke, 1, 1, 1, 1, 1, 1, 0, stream, params, NULL);
}

/* Launches tenant_add(data, n, add) on `stream`. */
static inline CUresult tenant_add_to(tenant_kernels *k, CUdeviceptr data, unsigned n, unsigned add, CUstream stream) {
    void *params[] = {&data, &n, &add};
    return cuLaunchKernel(k->add, (n + 127) / 128, 1, 1, 128, 1, 1, 0, stream, params, NULL);
}

/* A value another tenant may read from this tenant's stdout: "publish NAME 0xVALUE". */
static inline void tenant_publish(const char *name, unsigned long long value) {
    printf("publish %s 0x%llx\n", name, value);
}

#endif
