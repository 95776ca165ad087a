//! Evaluation: detection mAP (VOC, COCO), classifier accuracy and confusion matrix, plots.
