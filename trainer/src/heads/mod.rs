//! Training heads: target encoding and losses for classifier, CenterNet and DetectNet_v2.
