"""Where impression logs come from: the simulator, MovieLens, explicit ratings, popularity
factors, and the click model (logging policy, examination, labels) they share."""
