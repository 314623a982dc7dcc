"""Attribution methods for a trained classifier, in plain torch, and the checks that say
whether an attribution map is faithful to the model: gradient saliency, integrated
gradients, Grad-CAM, deletion curves and the model-randomisation sanity check."""
