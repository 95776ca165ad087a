/* Stand-ins for the DeepStream metadata calls nvtlinfer makes (nvdsmeta.h, gstnvdsmeta.h), for
 * tests on machines without DeepStream. Built twice by gst-plugin/tests/deepstream_meta.rs:
 * with -DGST_META as libnvdsgst_meta.so (the buffer's batch meta), without it as
 * libnvds_meta.so (pools, lists, lock, version). As in DeepStream, metas come zeroed from a pool
 * and hang in GLists; an object's classifier and user metas are kept in tables here instead of
 * at their offsets in NvDsObjectMeta, which these tests do not mirror. Each call checks that the batch's
 * meta lock is held, as DeepStream requires of writers. */
#include <glib.h>
#include <stddef.h>

typedef struct {
  void *batch_meta;
  int meta_type;
  void *user_context;
  void *copy_func;
  void *release_func;
} BaseMeta;

#ifdef GST_META

static void *batch_meta;

void nvds_standin_set_batch_meta(void *batch) { batch_meta = batch; }

void *gst_buffer_get_nvds_batch_meta(void *buffer) { return buffer ? batch_meta : NULL; }

#else

enum { NVDS_OBJ_META = 3, NVDS_CLASSIFIER_META = 5, NVDS_LABEL_INFO_META = 6, NVDS_USER_META = 7 };

/* The NvDsFrameMeta prefix nvtlinfer reads (DeepStream 9.0 layout). */
typedef struct {
  BaseMeta base_meta;
  unsigned pad_index, batch_id;
  int frame_num;
  guint64 buf_pts, ntp_timestamp;
  unsigned source_id;
  int num_surfaces_per_frame;
  unsigned source_frame_width, source_frame_height, surface_type, surface_index, num_obj_meta;
  int b_infer_done;
  GList *obj_meta_list;
  GList *display_meta_list;
  GList *frame_user_meta_list;
} FrameMeta;

/* The NvDsObjectMeta prefix up to `parent`. */
typedef struct {
  BaseMeta base_meta;
  void *parent;
} ObjectMetaHead;

typedef struct {
  BaseMeta base_meta;
  unsigned num_labels;
  int unique_component_id;
  GList *label_info_list;
  const char *classifier_type;
} ClassifierMeta;

typedef struct {
  BaseMeta base_meta;
  void *user_meta_data;
} UserMeta;

/* Larger than DeepStream 9.0's NvDsObjectMeta and NvDsLabelInfo. */
enum { OBJECT_META_SIZE = 1024, LABEL_INFO_SIZE = 512 };

static int lock_depth;
static int unlocked_calls;
static GHashTable *classifiers_of_object;
static GHashTable *user_metas_of_object;

static void *acquire(void *batch, size_t size, int meta_type) {
  if (lock_depth != 1) unlocked_calls++;
  BaseMeta *meta = g_malloc0(size);
  meta->batch_meta = batch;
  meta->meta_type = meta_type;
  return meta;
}

void nvds_acquire_meta_lock(void *batch) { (void)batch; lock_depth++; }

void nvds_release_meta_lock(void *batch) { (void)batch; lock_depth--; }

void nvds_version(unsigned *major, unsigned *minor) { *major = 9; *minor = 0; }

void *nvds_acquire_obj_meta_from_pool(void *batch) {
  return acquire(batch, OBJECT_META_SIZE, NVDS_OBJ_META);
}

void *nvds_acquire_classifier_meta_from_pool(void *batch) {
  return acquire(batch, sizeof(ClassifierMeta), NVDS_CLASSIFIER_META);
}

void *nvds_acquire_label_info_meta_from_pool(void *batch) {
  return acquire(batch, LABEL_INFO_SIZE, NVDS_LABEL_INFO_META);
}

void nvds_add_obj_meta_to_frame(void *frame, void *object, void *parent) {
  if (lock_depth != 1) unlocked_calls++;
  FrameMeta *f = frame;
  ((ObjectMetaHead *)object)->parent = parent;
  f->obj_meta_list = g_list_append(f->obj_meta_list, object);
  f->num_obj_meta++;
}

void nvds_add_classifier_meta_to_object(void *object, void *classifier) {
  if (lock_depth != 1) unlocked_calls++;
  if (!classifiers_of_object) classifiers_of_object = g_hash_table_new(NULL, NULL);
  GList *list = g_hash_table_lookup(classifiers_of_object, object);
  g_hash_table_insert(classifiers_of_object, object, g_list_append(list, classifier));
}

void nvds_add_label_info_meta_to_classifier(void *classifier, void *label_info) {
  if (lock_depth != 1) unlocked_calls++;
  ClassifierMeta *c = classifier;
  c->label_info_list = g_list_append(c->label_info_list, label_info);
}

void *nvds_acquire_user_meta_from_pool(void *batch) {
  return acquire(batch, sizeof(UserMeta), NVDS_USER_META);
}

void nvds_add_user_meta_to_frame(void *frame, void *user_meta) {
  if (lock_depth != 1) unlocked_calls++;
  FrameMeta *f = frame;
  f->frame_user_meta_list = g_list_append(f->frame_user_meta_list, user_meta);
}

void nvds_add_user_meta_to_obj(void *object, void *user_meta) {
  if (lock_depth != 1) unlocked_calls++;
  if (!user_metas_of_object) user_metas_of_object = g_hash_table_new(NULL, NULL);
  GList *list = g_hash_table_lookup(user_metas_of_object, object);
  g_hash_table_insert(user_metas_of_object, object, g_list_append(list, user_meta));
}

/* For the tests. */
int nvds_standin_lock_depth(void) { return lock_depth; }

int nvds_standin_unlocked_calls(void) { return unlocked_calls; }

GList *nvds_standin_classifier_metas(void *object) {
  return classifiers_of_object ? g_hash_table_lookup(classifiers_of_object, object) : NULL;
}

GList *nvds_standin_object_user_metas(void *object) {
  return user_metas_of_object ? g_hash_table_lookup(user_metas_of_object, object) : NULL;
}

/* Offsets the tests compare with nvtl_core's mirror of the DeepStream structs. */
void nvds_standin_layout(size_t out[5]) {
  out[0] = offsetof(FrameMeta, batch_id);
  out[1] = offsetof(FrameMeta, num_obj_meta);
  out[2] = offsetof(FrameMeta, obj_meta_list);
  out[3] = offsetof(FrameMeta, frame_user_meta_list);
  out[4] = offsetof(ObjectMetaHead, parent);
}

#endif
