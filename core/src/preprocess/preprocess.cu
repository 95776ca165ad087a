// Frame -> network input tensor on the GPU, one thread per output pixel. The same contract as
// core/src/preprocess (mod.rs documents it; kernel.rs is the CPU path this mirrors step for
// step: fixed-point BT.601 conversion, pixel-centre sampling with f64 coordinates and f32
// weights, `pixel * mul + add` normalisation), so that the GPU and CPU inputs agree to float
// rounding. Compiled at run time with NVRTC; core/tests/preprocess_cuda_source.rs compiles the
// same text with the host C++ compiler (NVTL_HOST_BUILD) and checks it against the CPU path.
//
// Pixel formats (PixelFormat): 0 RGB, 1 RGBx, 2 BGR, 3 BGRx, 4 NV12, 5 I420, 6 GRAY8.
// Colour formats (model-color-format): 0 RGB, 1 BGR, 2 GRAY. Filter: 0 nearest, 1 bilinear.
// Order: 0 NCHW, 1 NHWC.

#ifndef NVTL_HOST_BUILD
#define NVTL_DEVICE __device__ __forceinline__
#endif

NVTL_DEVICE int nvtl_clamp_u8(int v) { return v < 0 ? 0 : (v > 255 ? 255 : v); }

// BT.601 limited range, 16-bit fixed point (convert.rs).
NVTL_DEVICE void nvtl_yuv_to_rgb(int y, int u, int v, int rgb[3]) {
    const int c = (y - 16) * 76309 + 32768;
    const int d = u - 128;
    const int e = v - 128;
    rgb[0] = nvtl_clamp_u8((c + 104597 * e) >> 16);
    rgb[1] = nvtl_clamp_u8((c - 25675 * d - 53280 * e) >> 16);
    rgb[2] = nvtl_clamp_u8((c + 132201 * d) >> 16);
}

NVTL_DEVICE int nvtl_luma(int r, int g, int b) {
    return (int)(((unsigned)r * 19595u + (unsigned)g * 38470u + (unsigned)b * 7471u + 32768u) >> 16);
}

// Channel values (in the model's colour order) of frame pixel (x, y).
NVTL_DEVICE void nvtl_pixel(const unsigned char* p0, const unsigned char* p1,
                            const unsigned char* p2, int s0, int s1, int s2, int format,
                            int color, int x, int y, float out[3]) {
    int rgb[3];
    int gray = -1;
    if (format == 4 || format == 5) {
        const int luma = p0[(long long)y * s0 + x];
        if (color == 2) {
            gray = luma;
        } else {
            int u, v;
            if (format == 4) {
                const long long i = (long long)(y / 2) * s1 + 2 * (x / 2);
                u = p1[i];
                v = p1[i + 1];
            } else {
                u = p1[(long long)(y / 2) * s1 + x / 2];
                v = p2[(long long)(y / 2) * s2 + x / 2];
            }
            nvtl_yuv_to_rgb(luma, u, v, rgb);
        }
    } else if (format == 6) {
        gray = p0[(long long)y * s0 + x];
        rgb[0] = rgb[1] = rgb[2] = gray;
    } else {
        const int bpp = (format == 1 || format == 3) ? 4 : 3;
        const unsigned char* px = p0 + (long long)y * s0 + (long long)x * bpp;
        const int swap = (format == 2 || format == 3);
        rgb[0] = swap ? px[2] : px[0];
        rgb[1] = px[1];
        rgb[2] = swap ? px[0] : px[2];
        if (color == 2) gray = nvtl_luma(rgb[0], rgb[1], rgb[2]);
    }
    if (color == 2) {
        out[0] = out[1] = out[2] = (float)gray;
    } else if (color == 1) {
        out[0] = (float)rgb[2];
        out[1] = (float)rgb[1];
        out[2] = (float)rgb[0];
    } else {
        out[0] = (float)rgb[0];
        out[1] = (float)rgb[1];
        out[2] = (float)rgb[2];
    }
}

// Pixel-centre sampling of destination position i over src pixels (kernel.rs linear_map).
NVTL_DEVICE void nvtl_linear_tap(int src, int dst, int i, int* p0, int* p1, float* w) {
    const double ratio = (double)src / (double)dst;
    double s = ((double)i + 0.5) * ratio - 0.5;
    const double last = (double)(src - 1);
    s = s < 0.0 ? 0.0 : (s > last ? last : s);
    *p0 = (int)s;
    *p1 = *p0 + 1 < src ? *p0 + 1 : src - 1;
    *w = (float)(s - (double)*p0);
}

NVTL_DEVICE int nvtl_nearest_tap(int src, int dst, int i) {
    const double ratio = (double)src / (double)dst;
    const int p = (int)(((double)i + 0.5) * ratio);
    return p < src - 1 ? p : src - 1;
}

extern "C" __global__ void nvtl_preprocess(
    const unsigned char* p0, const unsigned char* p1, const unsigned char* p2,
    int s0, int s1, int s2, int format,
    int roi_x, int roi_y, int roi_w, int roi_h,
    int px, int py, int sw, int sh, int nw, int nh,
    int color, int filter, int order,
    float mul, float add0, float add1, float add2,
    float* out) {
    const int ox = blockIdx.x * blockDim.x + threadIdx.x;
    const int oy = blockIdx.y * blockDim.y + threadIdx.y;
    if (ox >= nw || oy >= nh) return;
    const int channels = color == 2 ? 1 : 3;
    const float add[3] = {add0, add1, add2};
    float value[3] = {0.0f, 0.0f, 0.0f};
    const int inside = ox >= px && ox < px + sw && oy >= py && oy < py + sh;
    if (inside) {
        const int dx = ox - px;
        const int dy = oy - py;
        if (filter == 0) {
            const int sx = nvtl_nearest_tap(roi_w, sw, dx);
            const int sy = nvtl_nearest_tap(roi_h, sh, dy);
            nvtl_pixel(p0, p1, p2, s0, s1, s2, format, color, roi_x + sx, roi_y + sy, value);
        } else {
            int x0, x1, y0, y1;
            float wx, wy;
            nvtl_linear_tap(roi_w, sw, dx, &x0, &x1, &wx);
            nvtl_linear_tap(roi_h, sh, dy, &y0, &y1, &wy);
            float a[3], b[3], c[3], d[3];
            nvtl_pixel(p0, p1, p2, s0, s1, s2, format, color, roi_x + x0, roi_y + y0, a);
            nvtl_pixel(p0, p1, p2, s0, s1, s2, format, color, roi_x + x1, roi_y + y0, b);
            const int blend = !(y1 == y0 || wy == 0.0f);
            if (blend) {
                nvtl_pixel(p0, p1, p2, s0, s1, s2, format, color, roi_x + x0, roi_y + y1, c);
                nvtl_pixel(p0, p1, p2, s0, s1, s2, format, color, roi_x + x1, roi_y + y1, d);
            }
            for (int k = 0; k < 3; ++k) {
                const float top = a[k] + (b[k] - a[k]) * wx;
                if (blend) {
                    const float bottom = c[k] + (d[k] - c[k]) * wx;
                    value[k] = top + (bottom - top) * wy;
                } else {
                    value[k] = top;
                }
            }
        }
    }
    for (int k = 0; k < channels; ++k) {
        const float v = inside ? value[k] * mul + add[k] : add[k];
        const long long idx = order == 0 ? ((long long)k * nh + oy) * nw + ox
                                         : ((long long)oy * nw + ox) * channels + k;
        out[idx] = v;
    }
}
