//! Clustering of raw detections (nvinfer's cluster-mode) and the filters nvinfer applies
//! around it (ROI offsets, size limits, filter-out-class-ids, top-k, post-cluster threshold).
