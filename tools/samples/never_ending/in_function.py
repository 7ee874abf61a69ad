# a loop that waits for a condition that never comes true
step = 0
while step >= 0:
    step += 1
