"""The model zoo and datasets hwsim's own training loop uses (torch): the seed paper's models
(:mod:`~hwsim.capture.zoo.models`), two small transformers (:mod:`~hwsim.capture.zoo.transformers`) and the embedded
or user-provided datasets (:mod:`~hwsim.capture.zoo.data`). Nothing is downloaded at run time."""
