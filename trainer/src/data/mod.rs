//! Datasets: KITTI, COCO json, class folders, frames from video, pseudo-labels, augmentation.
