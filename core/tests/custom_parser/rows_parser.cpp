// A custom bounding-box parser as DeepStream users write them (nvdsinfer_custom_impl.h's
// prototype, declared here so the test needs no DeepStream headers), for
// core/tests/custom_parser.rs. The model's one output holds rows (class, confidence, centre x,
// centre y, width, height) in network pixels.
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>
#include <vector>

// The library's own operator new/delete (bound to it with -Bsymbolic), counting what is live, so
// the test can check that nvtl frees the objects a parser appends.
static std::atomic<long> live_allocations{0};

void *operator new(std::size_t size) {
  void *p = std::malloc(size ? size : 1);
  if (!p) throw std::bad_alloc();
  live_allocations++;
  return p;
}

void operator delete(void *p) noexcept {
  if (p) {
    live_allocations--;
    std::free(p);
  }
}

void operator delete(void *p, std::size_t) noexcept { operator delete(p); }

// Arrays (instance masks, which nvinfer frees with delete[]) are counted on their own too.
static std::atomic<long> live_arrays{0};

void *operator new[](std::size_t size) {
  void *p = operator new(size);
  live_arrays++;
  return p;
}

void operator delete[](void *p) noexcept {
  if (p) {
    live_arrays--;
    operator delete(p);
  }
}

void operator delete[](void *p, std::size_t) noexcept { operator delete[](p); }

extern "C" long rows_parser_live_allocations() { return live_allocations; }

extern "C" long rows_parser_live_arrays() { return live_arrays; }

struct NvDsInferDims {
  unsigned int numDims;
  unsigned int d[8];
  unsigned int numElements;
};

struct NvDsInferLayerInfo {
  int dataType;
  NvDsInferDims inferDims;
  int bindingIndex;
  const char *layerName;
  void *buffer;
  int isInput;
};

struct NvDsInferNetworkInfo {
  unsigned int width, height, channels;
};

struct NvDsInferObjectDetectionInfo {
  unsigned int classId;
  float left, top, width, height;
  float detectionConfidence;
};

struct NvDsInferParseDetectionParams {
  unsigned int numClassesConfigured;
  std::vector<float> perClassPreclusterThreshold;
  std::vector<float> perClassPostclusterThreshold;
  std::vector<float> &perClassThreshold = perClassPreclusterThreshold;
};

extern "C" bool NvDsInferParseRows(std::vector<NvDsInferLayerInfo> const &outputLayersInfo,
                                   NvDsInferNetworkInfo const &networkInfo,
                                   NvDsInferParseDetectionParams const &detectionParams,
                                   std::vector<NvDsInferObjectDetectionInfo> &objectList) {
  if (outputLayersInfo.size() != 1) return false;
  const NvDsInferLayerInfo &layer = outputLayersInfo[0];
  if (layer.dataType != 0 || layer.isInput || std::strcmp(layer.layerName, "rows") != 0 ||
      layer.inferDims.numDims != 2 || layer.inferDims.d[1] != 6 ||
      layer.inferDims.numElements != layer.inferDims.d[0] * 6)
    return false;
  if (networkInfo.width != 64 || networkInfo.height != 64 || networkInfo.channels != 3)
    return false;
  if (detectionParams.perClassPostclusterThreshold.size() != detectionParams.numClassesConfigured)
    return false;
  const float *rows = static_cast<const float *>(layer.buffer);
  for (unsigned int i = 0; i < layer.inferDims.d[0]; i++) {
    const float *r = rows + i * 6;
    unsigned int classId = static_cast<unsigned int>(r[0]);
    if (classId >= detectionParams.numClassesConfigured) continue;
    if (r[1] < detectionParams.perClassThreshold[classId]) continue;
    NvDsInferObjectDetectionInfo object;
    object.classId = classId;
    object.detectionConfidence = r[1];
    object.left = r[2] - r[4] / 2;
    object.top = r[3] - r[5] / 2;
    object.width = r[4];
    object.height = r[5];
    objectList.push_back(object);
  }
  return true;
}

// Appends an object, then reports failure: the object's storage must still be freed.
extern "C" bool NvDsInferParseFails(std::vector<NvDsInferLayerInfo> const &,
                                    NvDsInferNetworkInfo const &,
                                    NvDsInferParseDetectionParams const &,
                                    std::vector<NvDsInferObjectDetectionInfo> &objectList) {
  objectList.push_back(NvDsInferObjectDetectionInfo{0, 1, 1, 1, 1, 1});
  return false;
}

struct NvDsInferInstanceMaskInfo {
  unsigned int classId;
  float left, top, width, height;
  float detectionConfidence;
  float *mask;
  unsigned int mask_width, mask_height, mask_size;
};

// An instance-mask parser: every row as an object (nvinfer applies the thresholds itself for
// these), with a 4x2 mask (new[], as nvinfer's delete[] expects) whose value i is
// classId + i / 8; the third row's object comes without a mask.
extern "C" bool NvDsInferParseRowMasks(std::vector<NvDsInferLayerInfo> const &outputLayersInfo,
                                       NvDsInferNetworkInfo const &networkInfo,
                                       NvDsInferParseDetectionParams const &,
                                       std::vector<NvDsInferInstanceMaskInfo> &objectList) {
  if (outputLayersInfo.size() != 1 || networkInfo.width != 64) return false;
  const NvDsInferLayerInfo &layer = outputLayersInfo[0];
  const float *rows = static_cast<const float *>(layer.buffer);
  for (unsigned int i = 0; i < layer.inferDims.d[0]; i++) {
    const float *r = rows + i * 6;
    NvDsInferInstanceMaskInfo object;
    object.classId = static_cast<unsigned int>(r[0]);
    object.detectionConfidence = r[1];
    object.left = r[2] - r[4] / 2;
    object.top = r[3] - r[5] / 2;
    object.width = r[4];
    object.height = r[5];
    object.mask = nullptr;
    object.mask_width = object.mask_height = object.mask_size = 0;
    if (i != 2) {
      object.mask_width = 4;
      object.mask_height = 2;
      object.mask_size = 8 * sizeof(float);
      object.mask = new float[8];
      for (unsigned int v = 0; v < 8; v++) object.mask[v] = object.classId + v / 8.0f;
    }
    objectList.push_back(object);
  }
  return true;
}

struct NvDsInferAttribute {
  unsigned int attributeIndex;
  unsigned int attributeValue;
  float attributeConfidence;
  char *attributeLabel;
};

// A classifier parser: attribute 0 is the best of the one output's scores, labelled by the
// parser (strdup, as the header asks) when it beats the threshold; attribute 1 is always class 2
// with no label of its own (the label file names it). The description is long enough to live on
// the heap.
extern "C" bool NvDsInferClassifyScores(std::vector<NvDsInferLayerInfo> const &outputLayersInfo,
                                        NvDsInferNetworkInfo const &networkInfo,
                                        float classifierThreshold,
                                        std::vector<NvDsInferAttribute> &attrList,
                                        std::string &descString) {
  if (outputLayersInfo.size() != 1 || networkInfo.width != 64) return false;
  const NvDsInferLayerInfo &layer = outputLayersInfo[0];
  const float *scores = static_cast<const float *>(layer.buffer);
  unsigned int best = 0;
  for (unsigned int i = 1; i < layer.inferDims.numElements; i++)
    if (scores[i] > scores[best]) best = i;
  if (scores[best] >= classifierThreshold) {
    std::string label = "class-" + std::to_string(best);
    attrList.push_back(NvDsInferAttribute{0, best, scores[best], strdup(label.c_str())});
  }
  attrList.push_back(NvDsInferAttribute{1, 2, 1.0f, nullptr});
  descString = "a description longer than sixteen bytes";
  return true;
}
