//! nvtl GStreamer plugin: `nvtlinfer` runs DeepStream nvinfer configs with nvtl's backends,
//! `nvtlosd` draws what it found.
