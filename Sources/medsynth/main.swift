print("medsynth")
