{
  "targets": [
    {
      "target_name": "alignkit",
      "sources": [
        "native/addon.cc",
        "native/pool.cc",
        "native/core.cc",
        "native/gemm.cc",
        "native/elementwise.cc",
        "native/norm.cc",
        "native/attention.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")", "native"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS"],
      "cflags!": ["-fno-exceptions", "-O2", "-O0"],
      "cflags_cc!": ["-fno-exceptions", "-O2", "-O0"],
      "cflags": ["-O3", "-fno-math-errno", "-fno-trapping-math", "-pthread"],
      "cflags_cc": ["-O3", "-std=c++17", "-fno-math-errno", "-fno-trapping-math", "-pthread"],
      "ldflags": ["-pthread"]
    }
  ]
}
