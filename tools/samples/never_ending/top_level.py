# a top-level loop left over from experimenting, above the function
tries = 0
while True:
    tries += 1
